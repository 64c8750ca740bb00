"""Matplotlib pictures of the course: grids of numbers, sliding windows, padding, strides.

A picture is a row (or several rows) of items laid out left to right: ``Grid`` objects,
which draw a matrix with some cells highlighted, and strings such as ``"*"`` or ``"="``.
"""
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

if TYPE_CHECKING:  # for the annotations only: torch is imported where a picture needs it
    import torch

WINDOW_COLOR = "#8ecae6"
OUTPUT_COLOR = "#ffb703"
PADDING_COLOR = "#e9ecef"
EDGE_COLOR = "#495057"

Cell = tuple[int, int]  # (row, column) of a grid, counted in the padded grid
Pair = int | Sequence[int]  # a size for both sides, or (height, width)


@dataclass
class Grid:
    """A 2-D matrix drawn as a grid of numbered cells.

    ``padding`` adds that many rows/columns (shaded) on each side, as (p_h, p_w) or an
    int, showing ``pad_text`` ("0" for a convolution's zeros, "−∞" for max pooling's).
    ``highlight`` lists (row, col) cells, counted in the padded grid. ``holes`` lists
    cells (counted in the padded grid too) drawn like padding, with ``pad_text``: e.g. the
    zeros that a transposed convolution's stride inserts between the input's elements.
    """
    values: Any  # a tensor, an array, or lists of numbers
    title: str = ""
    highlight: set[Cell] = field(default_factory=set)
    color: str = WINDOW_COLOR
    padding: Pair = 0
    show_values: bool = True
    pad_text: str = "0"
    holes: set[Cell] = field(default_factory=set)

    def __post_init__(self) -> None:
        rows = [[float(v) for v in row] for row in self.values.tolist()] \
            if hasattr(self.values, "tolist") else [[float(v) for v in row] for row in self.values]
        p_h, p_w = _pair(self.padding)
        width = len(rows[0]) + 2 * p_w
        pad: list[float | None] = [None]  # a padded cell
        self.padded = [pad * width for _ in range(p_h)] \
            + [pad * p_w + row + pad * p_w for row in rows] \
            + [pad * width for _ in range(p_h)]
        for i, j in self.holes:
            self.padded[i][j] = None
        self.highlight = set(self.highlight)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.padded), len(self.padded[0])

    def draw(self, ax: Axes, left: float, bottom: float) -> None:
        n_rows, n_cols = self.shape
        cells, faces, styles = [], [], []
        for i, row in enumerate(self.padded):
            for j, value in enumerate(row):
                faces.append(self.color if (i, j) in self.highlight else (
                    PADDING_COLOR if value is None else "white"))
                styles.append(":" if value is None else "-")
                y = bottom + n_rows - 1 - i
                x = left + j
                cells.append([(x, y), (x + 1, y), (x + 1, y + 1), (x, y + 1)])
                if self.show_values:
                    # The typographic minus, as in the titles and matplotlib's own ticks.
                    text = self.pad_text if value is None else f"{value:g}".replace("-", "−")
                    ax.text(left + j + 0.5, y + 0.5, text, ha="center", va="center",
                            fontsize=11, color="#868e96" if value is None else "black")
        # One collection of plain squares draws much faster than a patch per cell (grading
        # renders every figure).
        ax.add_collection(PolyCollection(cells, facecolors=faces, edgecolors=EDGE_COLOR,
                                         linewidths=1, linestyles=styles, zorder=1))
        if self.title:
            ax.text(left + n_cols / 2, bottom + n_rows + 0.3, self.title, ha="center",
                    va="bottom", fontsize=11)


def window(top: int, left: int, height: int, width: int) -> set[Cell]:
    """The cells of a ``height`` x ``width`` window whose top-left cell is (top, left)."""
    return {(top + i, left + j) for i in range(height) for j in range(width)}


def _pair(value: Pair) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    first, second = value
    return first, second


def draw_rows(rows: list[list[Grid | str]], title: str | None = None, gap: float = 0.8,
              scale: float = 0.55) -> Figure:
    """Draw rows of items (``Grid`` or a symbol string); returns the figure.

    Each row is laid out left to right, its items centred on one horizontal line.
    """
    heights = [max(item.shape[0] for item in row if isinstance(item, Grid)) for row in rows]
    widths = [sum(item.shape[1] + gap if isinstance(item, Grid) else 1 + gap for item in row)
              for row in rows]
    total_height = sum(h + 1.5 for h in heights)
    fig, ax = plt.subplots(figsize=(scale * max(widths) + 0.4, scale * total_height + 0.4))
    top = total_height
    for row, height in zip(rows, heights):
        middle = top - 1 - height / 2
        x = 0.0
        for item in row:
            if isinstance(item, Grid):
                item.draw(ax, x, middle - item.shape[0] / 2)
                x += item.shape[1] + gap
            else:
                # The star operator of DejaVu Sans is tiny at the size of "+" and "=".
                ax.text(x + 0.5, middle, item, ha="center", va="center",
                        fontsize=28 if item == "⋆" else 16)
                x += 1 + gap
        top -= height + 1.5
    ax.set_xlim(-0.2, max(widths))
    ax.set_ylim(-0.2, total_height)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=12)
    fig.tight_layout()
    return fig


def draw_sliding_frames(input_size: Pair, kernel_size: Pair, padding: Pair = 0, stride: Pair = 1,
                        frames: list[Cell] | None = None, title: str | None = None,
                        scale: float = 0.4, values: Any = None, output: Any = None,
                        pad_text: str = "0", per_row: int = 1) -> Figure:
    """Still frames of a window sliding over a (padded) input, as in conv arithmetic.

    Each frame shows the padded input with the current window shaded and the output grid
    with the element it produces. ``frames`` picks output positions (default: the first
    two along a row and the last one). With ``values`` and ``output`` (2-D) the cells show
    their numbers, and the padding ``pad_text``; ``per_row`` frames share a row.
    """
    n_h, n_w = _pair(input_size)
    k_h, k_w = _pair(kernel_size)
    p_h, p_w = _pair(padding)
    s_h, s_w = _pair(stride)
    out_h = (n_h + 2 * p_h - k_h) // s_h + 1
    out_w = (n_w + 2 * p_w - k_w) // s_w + 1
    if frames is None:
        frames = [(0, 0), (0, min(1, out_w - 1)), (out_h - 1, out_w - 1)]
    shown = values is not None and output is not None
    grid_in = values if shown else [[0] * n_w for _ in range(n_h)]
    grid_out = output if shown else [[0] * out_w for _ in range(out_h)]
    frames_drawn: list[list[Grid | str]] = [[
        Grid(grid_in, f"input {n_h}×{n_w}, padding {padding}",
             window(i * s_h, j * s_w, k_h, k_w), padding=padding, show_values=shown,
             pad_text=pad_text),
        "→",
        Grid(grid_out, f"output {out_h}×{out_w}", {(i, j)}, color=OUTPUT_COLOR,
             show_values=shown),
    ] for i, j in frames]
    rows: list[list[Grid | str]] = [
        [item for k, frame in enumerate(frames_drawn[start:start + per_row])
         for item in ([""] if k else []) + frame]
        for start in range(0, len(frames_drawn), per_row)]
    fig = draw_rows(rows, title=title or
                    f"kernel {k_h}×{k_w}, padding {padding}, stride {stride}", scale=scale)
    return fig


def dilated_window(top: int, left: int, height: int, width: int,
                   dilation: Pair = 1) -> set[Cell]:
    """The cells of a ``height`` x ``width`` kernel with ``dilation`` (an int or a pair)
    whose top-left cell is (top, left): its cells are ``dilation`` apart."""
    d_h, d_w = _pair(dilation)
    return {(top + i * d_h, left + j * d_w) for i in range(height) for j in range(width)}


def transposed_frames(X: "torch.Tensor", K: "torch.Tensor",
                      stride: int = 1) -> list[list["Grid | str"]]:
    """Still frames of a transposed convolution of the 2-D tensors ``X`` and ``K``, two a row.

    One frame per input element X[i, j] (shaded), its copy X[i, j] · K, and the output so
    far with the cells the copy was added to shaded: the output so far is PyTorch's own
    transposed convolution of the elements seen so far. ``stride`` is an int. Returns the
    rows, for ``draw_rows``.
    """
    # Deferred: torch takes seconds to import, and the other pictures need none of it.
    from torch.nn import functional as F

    k_h, k_w = K.shape
    seen = X.new_zeros(X.shape)
    frames: list[list[Grid | str]] = []
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            seen[i, j] = X[i, j]
            so_far = F.conv_transpose2d(seen[None, None], K[None, None], stride=stride)[0, 0]
            frames.append([Grid(X, "input", {(i, j)}), "→",
                           Grid(X[i, j] * K, f"{X[i, j]:g} · K"), "→",
                           Grid(so_far, f"added at ({i * stride}, {j * stride})",
                                window(i * stride, j * stride, k_h, k_w), color=OUTPUT_COLOR)])
    return [frames[r] + [""] + frames[r + 1] for r in range(0, len(frames), 2)]


GROUP_COLORS = ["#8ecae6", "#ffb703", "#90be6d", "#f4a3a8", "#cdb4db", "#ffd6a5"]


def draw_channel_groups(panels: list[tuple[str, list[tuple[int, int, int]]]],
                        title: str | None = None, scale: float = 0.5,
                        row_labels: Sequence[str] = ()) -> Figure:
    """Which input channels each output channel of a convolution sees, with ``groups``.

    ``panels`` is a list of (title, layers), drawn side by side; ``layers`` is a chain of
    convolutions, each (in_channels, out_channels, groups). Channels are numbered boxes,
    one row per level from top (input) to bottom; each output channel is linked to the
    input channels of its group, in that group's colour. ``row_labels`` name the levels,
    left of the first panel. Returns the figure.
    """
    level_gap, box, panel_gap = 2.6, 0.8, 2.0
    widths = [max(max(c_in, c_out) for c_in, c_out, _ in layers) for _, layers in panels]
    levels = max(len(layers) for _, layers in panels) + 1
    height = (levels - 1) * level_gap + box
    # Room above for the panels' titles (one line or more), at about 0.2 inch a line.
    top = height + 0.4 + max(t.count("\n") + 1 for t, _ in panels) * 0.2 / scale
    # Room for the row labels, at about 0.085 inch a character.
    margin = max((0.085 * len(label) / scale + 0.4 for label in row_labels), default=0.0)
    fig, ax = plt.subplots(figsize=(scale * (sum(widths) + panel_gap * (len(panels) - 1)
                                             + margin) + 0.6, scale * top + 0.4))
    for level, label in enumerate(row_labels):
        ax.text(-0.3, height - level * level_gap - box / 2, label, ha="right", va="center",
                fontsize=10)
    left = 0.0
    for (panel_title, layers), width in zip(panels, widths):
        sizes = [layers[0][0]] + [c_out for _, c_out, _ in layers]
        # Each channel's box takes the colour of its group in the layer below it (the last
        # row: in the layer above), so a group's inputs and outputs share a colour.
        colours = [[GROUP_COLORS[c * g // n % len(GROUP_COLORS)] for c in range(n)]
                   for n, (_, _, g) in zip(sizes, layers)]
        n_last, g_last = sizes[-1], layers[-1][2]
        colours.append([GROUP_COLORS[c * g_last // n_last % len(GROUP_COLORS)]
                        for c in range(n_last)])

        def centre(level: int, channel: int) -> tuple[float, float]:
            x = left + (width - sizes[level]) / 2 + channel + box / 2
            return x, height - level * level_gap - box / 2

        segments, segment_colours = [], []
        for level, (c_in, c_out, groups) in enumerate(layers):
            per_in, per_out = c_in // groups, c_out // groups
            for o in range(c_out):
                g = o // per_out
                x_o, y_o = centre(level + 1, o)
                for i in range(g * per_in, (g + 1) * per_in):
                    x_i, y_i = centre(level, i)
                    segments.append([(x_i, y_i - box / 2), (x_o, y_o + box / 2)])
                    segment_colours.append(GROUP_COLORS[g % len(GROUP_COLORS)])
        ax.add_collection(LineCollection(segments, colors=segment_colours, linewidths=1.5,
                                         zorder=0))
        squares, faces = [], []
        for level, n in enumerate(sizes):
            for c in range(n):
                x, y = centre(level, c)
                squares.append([(x - box / 2, y - box / 2), (x + box / 2, y - box / 2),
                                (x + box / 2, y + box / 2), (x - box / 2, y + box / 2)])
                faces.append(colours[level][c])
                ax.text(x, y, str(c), ha="center", va="center", fontsize=10)
        ax.add_collection(PolyCollection(squares, facecolors=faces, edgecolors=EDGE_COLOR,
                                         linewidths=1, zorder=1))
        ax.text(left + width / 2, height + 0.3, panel_title, ha="center", va="bottom",
                fontsize=11)
        left += width + panel_gap
    ax.set_xlim(-0.2 - margin, left - panel_gap + 0.2)
    ax.set_ylim(-0.2, top)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=12)
    fig.tight_layout()
    return fig
