"""Nothing a submission writes into its notebook runs in the browser of whoever grades it.

Why: the formgrader shows an autograded notebook as HTML made by nbconvert (nbgrader's
"formgrade" template) and serves it from the Jupyter server itself, so a script in that page
runs with the instructor's login: it can read and write every file the server reaches, and
inside JupyterLab's Formgrader tab (an iframe that allows scripts and the same origin) it can
even post JupyterLab commands to the main window. A student puts scripts there easily:
``display(HTML('<script>...'))``, ``<img onerror=...>``, ``display(Javascript(...))``, an SVG
with handlers, or raw HTML in a markdown cell. nbconvert's own ``HTMLExporter.sanitize_html``
does not cover it: nbgrader's formgrade and feedback templates render markdown cells without
it, and the stored notebooks are read by other viewers too. So the autograded notebook itself
is made clean (``c.Autograde.autograde_preprocessors``), and feedback cleans it again
(``c.GenerateFeedback.preprocessors``, for notebooks graded before this preprocessor).

``SanitizeSubmission`` is nbconvert's ``SanitizeHTML`` preprocessor (bleach) with the holes
that matter here closed; the course's own outputs (text, PNG figures, streams, errors) and
markdown without HTML pass untouched:

- code cell outputs: text/plain, PNG, JPEG, LaTeX and JSON are kept; text/html is cleaned by
  bleach with the allowlist of nbconvert's own ``clean_html`` (tags it does not allow are
  shown as text, so the grader sees what was tried); text/markdown is treated like a markdown
  cell; every other type (application/javascript, image/svg+xml, widgets, ...) is removed, and
  an output left with nothing says so in text/plain. ``filenames`` in output metadata (which
  nbconvert would use as an image's address) is removed.
- markdown cells (and text/markdown outputs) are parsed with nbconvert's own markdown parser,
  the one the formgrader renders them with. A cell that holds raw HTML, a link or image whose
  address mistune deems harmful (``javascript:``, ``data:text/html``, ...), or an image of a
  missing attachment, is shown as its source text in a code block under a one-line note: its
  text stays readable, nothing of it is markup. Other markdown is left as it is.
- attachments of markdown cells keep PNG, JPEG and GIF data only (an SVG or HTML attachment is
  replaced by a short text/plain note, so the cell still renders).
- raw cells are cleaned by bleach (nbconvert's own behaviour); widget state in the notebook's
  metadata is removed.
"""
import base64
import re
import typing  # typing.Any: traitlets' Any is a trait below

import bleach
from mistune.renderers.html import HTMLRenderer
from nbconvert.filters.markdown_mistune import MarkdownWithMath
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbformat.notebooknode import NotebookNode
from traitlets import Any, Bool, List, Unicode

from convgrader.notebooks import stream_output
from convgrader.outputs import clean_output

# nbconvert's clean_html filter (nbconvert/filters/strings.py), which HTMLExporter applies when
# sanitize_html is set: the same allowlist here makes that second pass leave outputs as they are.
CLEAN_HTML_TAGS = [*bleach.ALLOWED_TAGS, "div", "pre", "code", "span", "table", "tr", "td"]
CLEAN_HTML_ATTRIBUTES = {**bleach.ALLOWED_ATTRIBUTES, "*": ["class", "id"]}
RASTER_IMAGES = ("image/png", "image/jpeg", "image/gif")
NOTE = ("*The grader shows this cell as text: it holds HTML or a link that grading pages do "
        "not display.*")

# Tokens, as nbconvert's markdown2html sees them. nbconvert annotates renderer as an
# HTMLRenderer, but hands it to mistune's Markdown, where None means tokens.
_parse_markdown = MarkdownWithMath(renderer=None)  # type: ignore[arg-type]
_urls = HTMLRenderer(allow_harmful_protocols=None)  # mistune's own list of safe protocols


def _text(value: str | list[str]) -> str:
    return "".join(value) if isinstance(value, list) else value


def _markdown_is_safe(source: str, attachments: dict[str, typing.Any]) -> bool:
    """True when nbconvert renders ``source`` with no raw HTML and only safe addresses."""
    def safe(tokens: list[dict[str, typing.Any]]) -> bool:
        for token in tokens:
            kind = token.get("type")
            if kind in ("inline_html", "block_html"):
                return False
            if kind in ("link", "image"):
                url = token.get("attrs", {}).get("url", "")
                if kind == "image" and url.startswith("attachment:"):
                    if url[len("attachment:"):] not in attachments:
                        return False  # nbconvert fails on a missing attachment
                elif _urls.safe_url(url) != url:
                    return False
            children = token.get("children")
            if isinstance(children, list) and not safe(children):
                return False
        return True
    try:
        tokens = _parse_markdown(source)  # with no renderer: a list of tokens
        return isinstance(tokens, list) and safe(tokens)
    except Exception:  # noqa: BLE001 - whatever mistune cannot parse is shown as text
        return False


def markdown_as_text(source: str) -> str:
    """``source`` in a fenced code block (longer than any run of backticks in it), under NOTE."""
    longest = max((len(run) for run in re.findall(r"`+", source)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{NOTE}\n\n{fence}\n{source.rstrip()}\n{fence}\n"


class SanitizeSubmission(SanitizeHTML):
    """Remove active content from a notebook's cells and outputs (see the module's docstring)."""

    # nbconvert's preprocessors are off unless enabled; nbgrader registers them as they are.
    enabled = Bool(True).tag(config=True)
    tags = List(Unicode(), default_value=CLEAN_HTML_TAGS,
                help="HTML tags kept in text/html outputs (others are escaped)").tag(config=True)
    attributes = Any(default_value=CLEAN_HTML_ATTRIBUTES,
                     help="HTML attributes kept in text/html outputs").tag(config=True)

    def preprocess(self, nb: NotebookNode,
                   resources: dict[str, typing.Any]) -> tuple[NotebookNode, dict[str, typing.Any]]:
        nb.metadata.pop("widgets", None)  # widget state: the HTML export would load its renderer
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, typing.Any],
                        cell_index: int) -> tuple[NotebookNode, dict[str, typing.Any]]:
        if cell.cell_type == "markdown":
            self.sanitize_attachments(cell, cell_index)
            cell.source = self.sanitize_markdown(cell.source, cell.get("attachments", {}),
                                                 f"markdown cell {cell_index}")
        elif cell.cell_type == "raw":
            cell.source = self.sanitize_html_tags(cell.source)
        elif cell.cell_type == "code":
            cell.outputs = self.sanitize_code_outputs(cell.outputs, cell_index)
        return cell, resources

    def sanitize_markdown(self, source: str | list[str], attachments: dict[str, typing.Any],
                          where: str) -> str:
        source = _text(source)
        if _markdown_is_safe(source, attachments):
            return source
        self.log.info("Showing %s as text: it holds HTML or a harmful link", where)
        text = markdown_as_text(source)
        return text if _markdown_is_safe(text, {}) else NOTE

    def sanitize_attachments(self, cell: NotebookNode, cell_index: int) -> None:
        for name, bundle in list(cell.get("attachments", {}).items()):
            kept = {mime: data for mime, data in bundle.items() if mime in RASTER_IMAGES}
            if len(kept) < len(bundle):
                self.log.info("Markdown cell %d: attachment %r keeps only raster images",
                              cell_index, name)
            if not kept:
                note = f"attachment {name} removed by the grader".encode()
                kept = {"text/plain": base64.b64encode(note).decode("ascii")}
            cell.attachments[name] = NotebookNode(kept)

    def sanitize_code_outputs(self, outputs: list[NotebookNode],
                              cell_index: int | None = None) -> list[NotebookNode]:
        """Each output rebuilt by the grader's allow-list (``convgrader.outputs``: known
        types, text values, an image's width and height as numbers, nothing else), then its
        HTML and markdown cleaned; an output that cannot be rebuilt becomes a note."""
        cleaned = []
        for output in outputs:
            output_type = output.get("output_type")
            kept, dropped = clean_output(output_type, output, output.get("execution_count"))
            if dropped:
                self.log.info("Cell %s: %s", cell_index, dropped)
            if kept is None:  # on stdout: a note never changes a test cell's grade
                what = output_type if isinstance(output_type, str) and len(output_type) < 40 \
                    else "an"
                kept = stream_output(f"[{what} output removed by the grader]\n")
            for mime, text in kept.get("data", {}).items():
                if mime == "text/html":
                    kept.data[mime] = self.sanitize_html_tags(text)
                elif mime == "text/markdown":
                    kept.data[mime] = self.sanitize_markdown(text, {}, f"cell {cell_index}")
            cleaned.append(kept)
        return cleaned
