"""Feedback pages: hidden tests removed only where the instructor put them; a page that
works offline.

nbgrader's ``ClearHiddenTests`` looks for ``### BEGIN HIDDEN TESTS`` in every cell of an
autograded notebook, the student's answers included: an answer holding that comment
without its END (or any such region outside a test cell) makes ``generate_feedback`` fail
for that student. ``ClearKnownHiddenTests`` clears hidden tests only in the test cells the
gradebook knows (their source in autograded/ is the instructor's, put back by autograde);
a student's own cells are shown as written. nbgrader_config.py puts it in
``c.GenerateFeedback.preprocessors`` in place of nbgrader's.

A feedback page is a file: students open it from disk or from JupyterLab, on machines that
are often offline. ``FeedbackExporter`` (``c.GenerateFeedback.exporter_class``) writes the
formulas of markdown as MathML when the page is made (``convgrader.mathml``), which browsers
display themselves: the page has no script and fetches nothing (stock pages load MathJax from
a CDN and show raw ``$...$`` offline). Its head has the course's style, with which long lines
of text outputs wrap in their box, and of the template's CSS the rules the page can use
(``used_css_only``). Its page's body passes nh3 last (``convgrader.pages``): only that head is
the course's own.
"""
import functools
import re
from html.parser import HTMLParser
from typing import Any, TypeAlias

import bleach
import markupsafe
import tinycss2
from jinja2 import DictLoader, Environment, pass_context
from jinja2.runtime import Context
from nbconvert.exporters import HTMLExporter
from nbconvert.filters.highlight import Highlight2HTML, _pygments_highlight
from nbconvert.filters.markdown_mistune import MarkdownWithMath
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearHiddenTests
from pygments.formatters import HtmlFormatter
from nbformat import NotebookNode
from traitlets import Bool

from convgrader import pages, sanitize
from convgrader.mathml import MathMLRenderer


class ClearKnownHiddenTests(ClearHiddenTests):
    """``ClearHiddenTests`` on the gradebook's test cells only."""

    def preprocess(self, nb: NotebookNode,
                   resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            solutions = {c.name for c in notebook.solution_cells}
            self._tests = {c.name for c in notebook.grade_cells} - solutions
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, Any],
                        cell_index: int) -> tuple[NotebookNode, dict[str, Any]]:
        if utils.is_grade(cell) and cell.metadata.nbgrader.get("grade_id") in self._tests:
            return super().preprocess_cell(cell, resources, cell_index)
        return cell, resources


# ---- The feedback page: a file a student opens alone, often offline ----------------------

# nbconvert's templates call its ``mathjax()`` macro once, in the page's head, which loads
# MathJax 2 from a CDN (nbgrader's feedback template gives it no URL, so
# ``HTMLExporter.mathjax_url`` does not reach it). In its place the head gets the course's
# style: the formulas are MathML already.
HEAD_MACRO = """\
{%- macro mathjax(url=None) -%}
{{ feedback_page_head() }}
{%- endmacro %}
"""

# Long lines of text outputs (the grader's "FAILED: ..." list, a check's message) wrap inside
# their box; bootstrap's pre scrolls them sideways. Code input keeps its lines.
WRAP_OUTPUT_CSS = """
div.output_area pre {
  white-space: pre-wrap;
  word-break: normal;
  overflow-wrap: anywhere;
}
"""

# Formulas are MathML (convgrader.mathml): browsers typeset it with a font that has OpenType
# math tables, "math" by default. Named first, the ones Windows and macOS have and common
# Linux ones: Chromium on Linux may not find one by "math" alone (hats and stretched
# brackets then go astray).
MATH_CSS = """
math {
  font-family: "Cambria Math", "STIX Two Math", "Latin Modern Math", "DejaVu Math TeX Gyre",
    math;
}
"""


def feedback_page_head() -> markupsafe.Markup:
    return markupsafe.Markup(  # noqa: S704 - the course's own style, no submission's
        f"<style>{WRAP_OUTPUT_CSS}{MATH_CSS}</style>")


# ---- Only the CSS the page uses -----------------------------------------------------------

# nbgrader's template puts all of Bootstrap 3 in the head (117 KB, more than most pages'
# content); a page uses a few dozen of its rules. A page has no script, so its classes and
# ids are those of its markup: a rule all of whose selectors need a class or id the page
# lacks matches nothing, and goes (so do @font-face and @keyframes no kept rule names).
# Pruned by class and id only: the HTML parser adds elements (tbody, ...) but no classes.

# A rule as ``_parse_rules`` reads it: its text; what each of its selectors needs (None: it
# is kept anyway); the name an @font-face or @keyframes gives; an @media's rules.
CssRule: TypeAlias = "tuple[str, list[frozenset[str]] | None, str | None, list[CssRule] | None]"

def _needs(selector: list[Any]) -> frozenset[str]:  # tinycss2's tokens
    """The classes ('.x') and ids ('#x') an element must have for ``selector`` to match:
    those outside functions (``:not(.x)`` needs none)."""
    needs, previous = set(), None
    for token in selector:
        if token.type == "ident" and previous == ".":
            needs.add("." + token.value)
        elif token.type == "hash" and token.is_identifier:
            needs.add("#" + token.value)
        previous = token.value if token.type == "literal" else None
    return frozenset(needs)


def _selectors(prelude: list[Any]) -> list[frozenset[str]]:
    """What each selector of a rule's comma-separated list needs (``_needs``)."""
    selectors: list[list[Any]] = [[]]
    for token in prelude:
        if token.type == "literal" and token.value == ",":
            selectors.append([])
        else:
            selectors[-1].append(token)
    return [_needs(selector) for selector in selectors]


def _parse_rules(rules: list[Any]) -> list[CssRule]:
    """[(text, alternatives | None, name | None, children | None)] for ``_kept_css``."""
    parsed: list[CssRule] = []
    for rule in rules:
        if rule.type == "qualified-rule":
            parsed.append((tinycss2.serialize([rule]), _selectors(rule.prelude), None, None))
        elif rule.type == "at-rule" and rule.lower_at_keyword == "media" and rule.content:
            children = _parse_rules(tinycss2.parse_rule_list(rule.content, True, True))
            parsed.append((f"@media{tinycss2.serialize(rule.prelude)}", None, None, children))
        elif rule.type == "at-rule" and (rule.lower_at_keyword == "font-face"
                                         or rule.lower_at_keyword.endswith("keyframes")):
            text = tinycss2.serialize([rule])
            if rule.lower_at_keyword != "font-face":
                name = tinycss2.serialize(rule.prelude).strip()
            else:
                family = re.search(r"font-family\s*:\s*([^;}]+)", text)
                name = family and family[1].strip().strip("'\"")
            parsed.append((text, None, name or "", None))
        elif rule.type == "at-rule" or (rule.type == "comment" and rule.value.startswith("!")):
            parsed.append((tinycss2.serialize([rule]), None, None, None))  # licences: /*! */
    return parsed


@functools.lru_cache(maxsize=16)  # the same few style elements in every page
def _css_rules(css: str) -> list[CssRule]:
    return _parse_rules(tinycss2.parse_stylesheet(css, skip_whitespace=True))


def _kept_css(rules: list[CssRule], names: set[str]) -> str:
    """The CSS text of ``rules`` (``_parse_rules``) a page with the classes and ids ``names``
    can use: its @font-face and @keyframes first, where a kept rule names them."""
    kept, named = [], []
    for text, alternatives, name, children in rules:
        if children is not None:
            inner = _kept_css(children, names)
            if inner:
                kept.append(f"{text}{{{inner}}}")
        elif name is not None:
            named.append((text, name))
        elif alternatives is None or any(needs <= names for needs in alternatives):
            kept.append(text)
    css = "\n".join(kept)
    return "\n".join([*(text for text, name in named if name and name in css), css])


class _Names(HTMLParser):
    """The classes ('.x') and ids ('#x') of a page's elements."""

    def __init__(self, page: str):
        super().__init__()
        self.names: set[str] = set()
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "class" and value:
                self.names.update("." + c for c in value.split())
            elif name == "id" and value:
                self.names.add("#" + value)


def used_css_only(page: str) -> str:
    """``page`` with each ``<style>`` of its head keeping only the rules the page can use."""
    head, end, body = page.partition("</head>")
    names = _Names(page).names
    head = re.sub(r"(<style[^>]*>)(.*?)(</style>)",
                  lambda m: m[1] + _kept_css(_css_rules(m[2]), names) + m[3],
                  head, flags=re.DOTALL | re.IGNORECASE)
    return head + end + body


def _bleach_attribute(tag: str, name: str, value: str) -> bool:
    return pages.mathml_attribute(tag, name, value) is not None or \
        name in sanitize.CLEAN_HTML_ATTRIBUTES["*"]


def clean_html_keeping_mathml(html: object) -> str:
    """nbconvert's ``clean_html`` filter (bleach; what it does not allow shows as text),
    keeping the MathML of formulas as ``convgrader.pages`` does."""
    return bleach.clean(
        str(html), tags=[*sanitize.CLEAN_HTML_TAGS, *sorted(pages.MATHML_TAGS)],
        attributes={**sanitize.CLEAN_HTML_ATTRIBUTES,
                    **dict.fromkeys(pages.MATHML_TAGS, _bleach_attribute)})


class _StyledTokensOnly(HtmlFormatter):
    """Pygments' HtmlFormatter giving a span only to the tokens its style sets apart (a
    colour, a face). Names and punctuation, which the style leaves as the text around them,
    had a span each: in a page with no script such a span does nothing, and they were a
    third of the largest pages' bytes."""

    def _get_css_classes(self, ttype: Any) -> str:  # a pygments token type
        classes = super()._get_css_classes(ttype)
        return classes if set(classes.split()) & self.class2style.keys() else ""


class StyledTokensHighlight(Highlight2HTML):
    """nbconvert's ``highlight_code`` filter (nbconvert 7.17), with ``_StyledTokensOnly``
    in the style of the page's CSS (``CSSHTMLHeaderPreprocessor.style``)."""

    def __call__(self, source: str, language: str | None = None,
                 metadata: dict[str, Any] | None = None) -> str:
        language = language or self.pygments_lexer
        style = self.config.get("CSSHTMLHeaderPreprocessor", {}).get("style", "default")
        formatter = _StyledTokensOnly(cssclass=markupsafe.escape(f" highlight hl-{language}"),
                                      style=style, **self.extra_formatter_options)
        return _pygments_highlight(source or " ", formatter, language, metadata)


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter, making a page that works offline and has no script: the
    formulas of markdown (cells, comments, markdown outputs) written as MathML
    (``convgrader.mathml``) instead of left for MathJax from a CDN, text outputs that wrap;
    the page's body cleaned by nh3.

    ``c.GenerateFeedback.exporter_class`` selects it, for feedback only: the formgrader builds
    its own HTMLExporter (and loads MathJax). A page needs nothing but itself, opened from
    disk or served, online or not. Its head keeps, of the template's CSS (all of Bootstrap 3,
    117 KB), the rules the page can use (``used_css_only``; ``prune_css`` off keeps all), and
    its code has spans only where the style shows them (``StyledTokensHighlight``): the
    sample class's pages are 36 to 130 KB, 63 KB the median, where MathJax inside made each
    2.2 to 2.4 MB.

    Its last step is nh3 (``convgrader.pages``): everything after the head, made by nbgrader's
    "feedback" template from the notebook and the grades, is cleaned with the course's
    allow-list, which has the MathML; the head is the template's CSS, the course's style,
    and the notebook's name as text. Before that, with ``sanitize_html``, markdown and HTML
    outputs pass nbconvert's ``clean_html`` filter, whose bleach allow-list here has the
    MathML too (``clean_html_keeping_mathml``): it would show a formula's tags as text.
    """

    prune_css = Bool(True, help="Keep only the CSS rules a page can use in its head "
                     "(used_css_only); False keeps all of its template's.").tag(config=True)

    def __init__(self, config: Any = None, **kw: Any):  # a traitlets Config
        super().__init__(config=config, **kw)
        # Tried before the template folders: our 'mathjax.html.j2' wins over nbconvert's.
        self.extra_loaders = [DictLoader({"mathjax.html.j2": HEAD_MACRO}), *self.extra_loaders]

    @pass_context
    def markdown2html(self, context: Context, source: str) -> str:
        """``HTMLExporter.markdown2html`` (nbconvert 7.17), formulas as MathML."""
        cell = context.get("cell", {})
        renderer = MathMLRenderer(
            escape=False,
            attachments=cell.get("attachments", {}),
            embed_images=self.embed_images,
            path=context.get("resources", {}).get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links,
            **self.lexer_options,
        )
        return MarkdownWithMath(renderer=renderer).render(source)

    def _create_environment(self) -> Environment:
        environment = super()._create_environment()
        environment.globals["feedback_page_head"] = feedback_page_head
        environment.filters["clean_html"] = clean_html_keeping_mathml
        return environment

    # A page's text, where nbconvert's Exporter says a notebook: its HTMLExporter, whose
    # signature this is, ignores the same [override].
    def from_notebook_node(  # type: ignore[override]
            self, nb: NotebookNode, resources: dict[str, Any] | None = None,
            **kw: Any) -> tuple[str, dict[str, Any]]:
        # The notebook's name is the page's title, in the head: as text.
        if resources and "notebook" in resources.get("nbgrader", {}):
            resources = {**resources, "nbgrader": {
                **resources["nbgrader"],
                "notebook": pages.clean_text(resources["nbgrader"]["notebook"])}}
        # nbconvert takes highlight_code from ``filters`` when the configuration names one.
        configured = self.filters
        language = nb.metadata.get("language_info", {})
        self.filters = {"highlight_code": StyledTokensHighlight(
            pygments_lexer=language.get("pygments_lexer", language.get("name")), parent=self),
            **configured}
        try:
            html, resources = super().from_notebook_node(nb, resources, **kw)
        finally:
            self.filters = configured
        html = pages.clean_page(html)
        return (used_css_only(html) if self.prune_css else html), resources
