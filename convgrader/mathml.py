r"""A feedback page's formulas as MathML, written when the page is made: no script, no fetch.

A feedback page is a file its student opens alone, often offline. nbconvert's markdown
renderer keeps a cell's formulas (``$...$``, ``$$...$$``, ``\(...\)``, ``\[...\]``,
``\begin{env}...\end{env}``) as text for MathJax to typeset in the browser; MathJax 3 put
inside every page made each page 2.2 MB. ``MathMLRenderer`` writes each formula as
presentation MathML instead, converted by latex2mathml (pinned in requirements.txt), which
browsers display themselves (Chromium 109+, Firefox, Safari).

Markdown cells are the student's own, so their formulas are untrusted, and latex2mathml is
no sanitizer (``\href`` and ``\style`` become attributes; its serializer unescapes text, so
``\text{<b>x</b>}`` is markup). So ``tex_to_mathml``:

- shows a formula as its source text (escaped) when it is longer than ``MAX_TEX_CHARS``,
  defines macros (``\def``, ``\newcommand``, ...: their expansion is bounded by depth only),
  makes latex2mathml fail in any way, gives an element a wrong number of children (``ARITY``:
  ``\frac{a`` is an ``<mfrac>`` of one), or gives MathML longer than ``MAX_MATHML_CHARS``;
- rebuilds latex2mathml's element tree by an allow-list, ``pages.MATHML_TAGS`` and
  ``pages.MATHML_ATTRIBUTES``: an element of any other kind shows the formula as its source,
  another attribute (``href``, ``style``, ``class``, ``xmlns``) or a value that is not a
  word, number or length is dropped, and text is written as text.

The page then passes nh3 (``convgrader.pages``), whose allow-list has the same MathML.
"""
import functools
import html
import re
from xml.etree.ElementTree import Element, tostring

from latex2mathml.converter import convert_to_element
from nbconvert.filters.markdown_mistune import IPythonRenderer

from convgrader import pages

# How many children these elements take: latex2mathml writes \frac{a (an unbalanced brace)
# as an <mfrac> of one, which browsers cannot lay out.
ARITY = {"mfrac": 2, "mroot": 2, "msub": 2, "msup": 2, "msubsup": 3, "mover": 2,
         "munder": 2, "munderover": 3}
MAX_TEX_CHARS = 2_000  # the course's longest formula has about 100
MAX_MATHML_CHARS = 60_000
# latex2mathml expands macros with no bound on their size: a formula may not define any.
MACRO_DEFINITION = re.compile(
    r"\\(?:def|[gex]def|let|(?:re)?newcommand|providecommand|(?:re)?newenvironment"
    r"|DeclareMathOperator)(?![A-Za-z])")


@functools.lru_cache(maxsize=1_024)  # each notebook's notes are in every student's page
def _mathml(tex: str, display: str) -> str:
    """latex2mathml's MathML for ``tex``, through the allow-list; raises when it cannot."""
    if len(tex) > MAX_TEX_CHARS or MACRO_DEFINITION.search(tex):
        raise ValueError("formula too long, or defines macros")
    math = convert_to_element(tex, display=display)
    for element in math.iter():
        if element.tag not in pages.MATHML_TAGS:
            raise ValueError(f"latex2mathml wrote a <{element.tag}>")
        if len(element) != ARITY.get(element.tag, len(element)):
            raise ValueError(f"an <{element.tag}> of {len(element)} children")
        element.attrib = {name: value for name, value in element.attrib.items()
                          if pages.mathml_attribute(element.tag, name, value) is not None}
        # latex2mathml writes symbols as character references in the text (and unescapes
        # its whole output): as plain text here, which tostring escapes.
        element.text = html.unescape(element.text) if element.text else element.text
        element.tail = html.unescape(element.tail) if element.tail else element.tail
    math.tail = None
    _unwrap_rows(math)
    if math.get("display") == "inline":  # the default
        del math.attrib["display"]
    mathml = tostring(math, encoding="unicode", short_empty_elements=False)
    if len(mathml) > MAX_MATHML_CHARS:
        raise ValueError("MathML too long")
    return mathml


def _unwrap_rows(element: Element) -> None:
    """Each ``<mrow>`` of one child, without attributes, replaced by its child, and the
    ``<mrow>`` latex2mathml puts around all of a formula dropped (``<math>`` is one): the
    same rendering, a third less text. An operator keeps its row (``2{,}5``), which may
    change its spacing."""
    for index, child in enumerate(element):
        _unwrap_rows(child)
        if child.tag == "mrow" and len(child) == 1 and not child.attrib and not child.text \
                and child[0].tag != "mo":
            child[0].tail = child.tail
            element[index] = child[0]
    if element.tag == "math" and len(element) == 1 and element[0].tag == "mrow" \
            and not element[0].attrib and not element[0].text:
        element[:] = list(element[0])


def tex_to_mathml(tex: str, display: str = "inline", source: str | None = None) -> str:
    """``tex`` as a ``<math>`` element (``display`` "inline" or "block"), or, when it cannot
    be one (the module's docstring), ``source`` (``tex`` by default) as escaped text."""
    try:
        return _mathml(tex, display)
    except Exception:  # noqa: BLE001 - a student's formula never stops a page
        return html.escape(tex if source is None else source)


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer, formulas written as MathML (``tex_to_mathml``)."""

    def inline_math(self, body: str) -> str:
        return tex_to_mathml(body, "inline", f"${body}$")

    def block_math(self, body: str) -> str:
        return tex_to_mathml(body, "block", f"$${body}$$")

    def latex_environment(self, name: str, body: str) -> str:
        environment = f"\\begin{{{name}}}{body}\\end{{{name}}}"
        return tex_to_mathml(environment, "block", environment)

