"""Every HTML page the course makes from a notebook passes nh3 (Ammonia's binding) last.

Why: the formgrader serves an autograded notebook as a page with the instructor's login, and
a feedback page is a file its student opens. ``convgrader.sanitize`` cleans the notebook
itself, but what nbconvert's templates then write is out of its reach: the classic template
writes an image output's metadata ``width`` as an *unquoted* attribute, so ``{"image/png":
{"width": "1 onerror=..."}}`` became an event handler in both pages. So the HTML is cleaned
again, after the templates, by a maintained HTML5 sanitizer with an allow-list:

- feedback (``convgrader.feedback.FeedbackExporter``): the finished page, once nbconvert is
  done with it, keeps its head (nbconvert's CSS, the course's style, the title as text) and
  everything after it passes nh3 (``clean_page``).
- the formgrader (nbgrader's own ``HTMLExporter``, configured in nbgrader_config.py): its
  scoring inputs, comment boxes and scripts are nbgrader's and stay outside; each cell's
  markdown, input, prompt and every output pass nh3, and the cell metadata its controls show
  (``grade_id``) is written as text (``templates/formgrade/convgrader_formgrade.html.j2``).

What the allow-list keeps is what the course's pages show: text markup, tables, code and
``pre``, headings, lists, images whose address is a ``data:image/png|jpeg|gif`` URL, links
within the page and to http(s) pages, the classes the page's CSS styles (nbconvert's,
nbgrader's, Pygments' and ANSI colours), a few text-styling properties, and formulas:
presentation MathML as ``convgrader.mathml`` writes them in feedback pages (its elements, and
attributes that are words, numbers or lengths), ``$...$`` text in the formgrader's, for its
MathJax. Everything else goes: scripts, event handlers, ``style`` elements, frames, forms,
SVG, MathML's links and actions, other URLs. Ids (and anchor names) a notebook brings are
prefixed with ``user-content-`` (links to them too), so none can stand for one of the
formgrader's controls, which its script finds by id.
"""
import os
import re
from typing import Any

import markupsafe
import nbgrader
import nh3
from pygments.token import STANDARD_TYPES

# nbgrader's page templates ("formgrade", "feedback"), and the course's formgrade page, which
# extends nbgrader's (nbgrader_config.py lists both, nbgrader's first).
NBGRADER_TEMPLATES = os.path.join(os.path.dirname(nbgrader.__file__),
                                  "server_extensions", "formgrader", "templates")
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
FORMGRADE_TEMPLATE = "convgrader_formgrade.html.j2"

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del",
    "details", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "main", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span",
    "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "tt", "u", "ul", "var",
}
# Presentation MathML, as latex2mathml writes a formula (convgrader.mathml, feedback pages):
# its elements and their attributes, none of which takes a URL. Not <maction>, <semantics>,
# <annotation-xml> or <mglyph>, nor MathML's href.
MATHML_TAGS = {
    "math", "menclose", "mfrac", "mi", "mn", "mo", "mover", "mpadded", "mphantom", "mroot",
    "mrow", "mspace", "msqrt", "mstyle", "msub", "msubsup", "msup", "mtable", "mtd", "mtext",
    "mtr", "munder", "munderover",
}
MATHML_ATTRIBUTES = {
    "accent", "columnalign", "columnlines", "columnspacing", "depth", "display",
    "displaystyle", "fence", "form", "height", "largeop", "linebreak", "linethickness",
    "lspace", "mathbackground", "mathcolor", "mathsize", "mathvariant", "maxsize", "minsize",
    "movablelimits", "notation", "rowlines", "rowspacing", "rspace", "scriptlevel",
    "separator", "stretchy", "voffset", "width",
}
# Their values are words, numbers, lengths and colours ("true", "0.333em", "center left",
# "-.21ex", "#ff0000"): no quotes, colons, parentheses or slashes.
MATHML_VALUE = re.compile(r"[\w.+\-#% ]{0,100}")
TAGS |= MATHML_TAGS

ATTRIBUTES = {
    "*": {"class", "id", "style", "title"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
    **{tag: MATHML_ATTRIBUTES for tag in MATHML_TAGS},
}
# None of these takes a URL: a style attribute can colour and align text, nothing more.
STYLE_PROPERTIES = {"color", "background-color", "font-weight", "font-style", "text-align",
                    "text-decoration", "vertical-align"}
RASTER_DATA_URLS = ("data:image/png;base64,", "data:image/jpeg;base64,",
                    "data:image/gif;base64,")
LINKS = ("http://", "https://")

ID_PREFIX = "user-content-"
# The page's own ids, which nbconvert's and nbgrader's CSS and the feedback's "(Top)" use.
PAGE_IDS = frozenset({"notebook", "notebook-container", "toc", "top"})

# Classes the pages' CSS gives a meaning: nbconvert's classic template, nbgrader's feedback
# template, Bootstrap's few that these use, and Pygments' token classes.
CLASSES = frozenset({
    "anchor-link", "border-box-sizing", "cell", "code_cell", "container", "dataframe",
    "highlight", "inner_cell", "input", "input_area", "input_prompt", "late-penalty",
    "nbgrader-label", "nbgrader_cell", "output", "output_area", "output_error",
    "output_execute_result", "output_html", "output_jpeg", "output_latex", "output_markdown",
    "output_png", "output_prompt", "output_stderr", "output_stdout", "output_stream",
    "output_subarea", "output_svg", "output_text", "output_wrapper", "panel", "panel-body",
    "panel-default", "panel-footer", "panel-heading", "panel-primary", "prompt",
    "pull-right", "rendered", "rendered_html", "text_cell", "text_cell_render", "unconfined",
    *(name for name in STANDARD_TYPES.values() if name),
})
CLASS_PREFIXES = ("ansi-", "celltag_", "hl-", "language-")


def _known_class(name: str) -> bool:
    return name in CLASSES or name.startswith(CLASS_PREFIXES)


def _anchor(name: str) -> str:
    return name if name in PAGE_IDS or name.startswith(ID_PREFIX) else ID_PREFIX + name


def mathml_attribute(tag: str, name: str, value: str) -> str | None:
    """``value`` when a MathML element ``tag`` keeps its attribute ``name``, else None."""
    if tag in MATHML_TAGS and name in MATHML_ATTRIBUTES and MATHML_VALUE.fullmatch(value):
        return value
    return None


def _attribute(tag: str, name: str, value: str) -> str | None:
    """The value nh3 keeps for an allowed attribute, or None to drop it."""
    if tag in MATHML_TAGS and name in MATHML_ATTRIBUTES:
        return mathml_attribute(tag, name, value)
    if name == "class":
        return " ".join(c for c in value.split() if _known_class(c)) or None
    if name in ("id", "name"):
        return _anchor(value)
    if name == "src":
        return value if tag == "img" and value.startswith(RASTER_DATA_URLS) else None
    if name == "href":
        if value.startswith("#"):
            return "#" + _anchor(value[1:])
        return value if value.lower().startswith(LINKS) else None
    if name in ("width", "height", "colspan", "rowspan"):
        return value if value.replace(".", "", 1).isdigit() else None
    return value


CLEANER = nh3.Cleaner(
    tags=TAGS, attributes=ATTRIBUTES, attribute_filter=_attribute,
    url_schemes={"http", "https", "data"}, filter_style_properties=STYLE_PROPERTIES,
    link_rel="noopener noreferrer", strip_comments=True)


class _NoCleaning:
    """nh3 switched off, for tests that show what it stops (``CLEANER = NO_CLEANING``)."""

    @staticmethod
    def clean(html: str) -> str:
        return html


NO_CLEANING = _NoCleaning()


def clean_html(html: object) -> markupsafe.Markup:
    """An HTML fragment with only what the allow-list keeps (the module's docstring)."""
    return markupsafe.Markup(CLEANER.clean(str(html)))  # noqa: S704 - nh3's output


def clean_text(value: object) -> markupsafe.Markup:
    """``value`` as text, safe in an element or any attribute (nh3 escapes quotes and spaces)."""
    return markupsafe.Markup(nh3.clean_text(str(value)))  # noqa: S704 - nh3's output


def clean_page(html: str) -> str:
    """A whole page made by a template: its head as it is, all that follows through nh3.

    The head is the template's own (style, scripts, a title given as text); the first
    ``</head>`` ends it, as the notebook's content only comes after it."""
    head, end, body = html.partition("</head>")
    if not end:
        raise ValueError("the page has no </head>: nothing is known to be the template's own")
    return f"{head}</head>\n<body>\n{CLEANER.clean(body)}\n</body>\n</html>\n"


def control_cell(cell: dict[str, Any]) -> dict[str, Any]:
    """What the formgrader's controls read of a cell (its nbgrader metadata), strings as text:
    they write ``grade_id`` into ids and labels unescaped."""
    nbgrader_metadata = cell.get("metadata", {}).get("nbgrader", {})
    return {"metadata": {"nbgrader": {
        key: clean_text(value) if isinstance(value, str) else value
        for key, value in nbgrader_metadata.items()}}}


# Registered with nbconvert's HTMLExporter by nbgrader_config.py (c.HTMLExporter.filters).
FILTERS = {
    "nh3_html": "convgrader.pages.clean_html",
    "nh3_text": "convgrader.pages.clean_text",
    "control_cell": "convgrader.pages.control_cell",
}
