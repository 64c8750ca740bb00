"""Matplotlib pictures of the course: grids of numbers, sliding windows, padding, strides.

A picture is a row (or several rows) of items laid out left to right: ``Grid`` objects,
which draw a matrix with some cells highlighted, and strings such as ``"*"`` or ``"="``.
"""
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
from matplotlib.collections import PolyCollection

WINDOW_COLOR = "#8ecae6"
OUTPUT_COLOR = "#ffb703"
PADDING_COLOR = "#e9ecef"
EDGE_COLOR = "#495057"


@dataclass
class Grid:
    """A 2-D matrix drawn as a grid of numbered cells.

    ``padding`` adds that many rows/columns (shaded) on each side, as (p_h, p_w) or an
    int, showing ``pad_text`` ("0" for a convolution's zeros, "−∞" for max pooling's).
    ``highlight`` lists (row, col) cells, counted in the padded grid.
    """
    values: object
    title: str = ""
    highlight: set = field(default_factory=set)
    color: str = WINDOW_COLOR
    padding: object = 0
    show_values: bool = True
    pad_text: str = "0"

    def __post_init__(self):
        rows = [[float(v) for v in row] for row in self.values.tolist()] \
            if hasattr(self.values, "tolist") else [[float(v) for v in row] for row in self.values]
        p_h, p_w = _pair(self.padding)
        width = len(rows[0]) + 2 * p_w
        self.padded = [[None] * width for _ in range(p_h)] \
            + [[None] * p_w + row + [None] * p_w for row in rows] \
            + [[None] * width for _ in range(p_h)]
        self.highlight = set(self.highlight)

    @property
    def shape(self):
        return len(self.padded), len(self.padded[0])

    def draw(self, ax, left, bottom):
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


def window(top, left, height, width):
    """The cells of a ``height`` x ``width`` window whose top-left cell is (top, left)."""
    return {(top + i, left + j) for i in range(height) for j in range(width)}


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def draw_rows(rows, title=None, gap=0.8, scale=0.55):
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


def draw_sliding_frames(input_size, kernel_size, padding=0, stride=1, frames=None,
                        title=None, scale=0.4, values=None, output=None, pad_text="0",
                        per_row=1):
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
    frames_drawn = [[
        Grid(grid_in, f"input {n_h}×{n_w}, padding {padding}",
             window(i * s_h, j * s_w, k_h, k_w), padding=padding, show_values=shown,
             pad_text=pad_text),
        "→",
        Grid(grid_out, f"output {out_h}×{out_w}", {(i, j)}, color=OUTPUT_COLOR,
             show_values=shown),
    ] for i, j in frames]
    rows = [[item for k, frame in enumerate(frames_drawn[start:start + per_row])
             for item in ([""] if k else []) + frame]
            for start in range(0, len(frames_drawn), per_row)]
    fig = draw_rows(rows, title=title or
                    f"kernel {k_h}×{k_w}, padding {padding}, stride {stride}", scale=scale)
    return fig
