r"""convgrader.mathml: a feedback page's formulas are MathML made with the page, and a student's
formula brings no markup of its own into it.

The formulas go through the feedback page as generate_feedback writes it (page_attacks), with
nh3 on and, as the control, off: latex2mathml's tree rebuilt by the allow-list must stop them
alone. test_autograde opens the sample class's pages in Chromium.
"""
import re

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

import page_attacks
from convgrader import mathml, pages
from page_attacks import FORMULAS, Parts, feedback_page, probes_outside_text


def test_a_formula_is_mathml():
    assert mathml.tex_to_mathml(r"\frac{a}{b_i^2}") == \
        "<math><mfrac><mi>a</mi><msubsup><mi>b</mi><mi>i</mi><mn>2</mn></msubsup></mfrac></math>"
    block = mathml.tex_to_mathml(r"\left\lfloor \frac{n}{s} \right\rfloor + 1", "block")
    assert block.startswith('<math display="block"><mrow><mo stretchy="true" fence="true" '
                            'form="prefix">⌊</mo><mfrac><mi>n</mi><mi>s</mi></mfrac>')
    # symbols are characters, text is text
    assert mathml.tex_to_mathml(r"a \times b \le c") == \
        "<math><mi>a</mi><mo>×</mo><mi>b</mi><mo>≤</mo><mi>c</mi></math>"
    assert mathml.tex_to_mathml(r"\text{if } a<b") == \
        "<math><mtext>if&nbsp;</mtext><mi>a</mi><mo>&lt;</mo><mi>b</mi></math>".replace(
            "&nbsp;", "\xa0")


# A formula that cannot be MathML shows as its source, escaped.
SOURCE_TEXT = {
    "unbalanced brace": r"\frac{a",
    "double superscript": "x^2^3",
    "left without right": r"\left( x",
    "macro": r"\def\a{\a\a}\a",
    "newcommand": r"\newcommand{\b}{x}\b",
    "too long": "x+" * 1_001,
    "too much MathML": r"\mathbb{" + "R" * 1_900 + "}",
    "deep braces": "{" * 999 + "x" + "}" * 999,
}


@pytest.mark.parametrize("tex", SOURCE_TEXT.values(), ids=SOURCE_TEXT.keys())
def test_a_formula_that_cannot_be_mathml_is_its_source(tex):
    assert mathml.tex_to_mathml(tex, "inline", f"${tex}$<b>") == \
        f"${tex}$<b>".replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_only_the_allow_lists_elements_and_attributes():
    html = mathml.tex_to_mathml(
        r"\href{javascript:alert(1)}{x} \style{color:red}{y} \class{score}{z} "
        r"\color{red} w \hspace{1em} \text{</mtext></math><img src=x onerror=alert(1)>}")
    parts = Parts(html)
    assert set(parts.tags) <= pages.MATHML_TAGS
    assert {name for _, name, _ in parts.attributes} <= {"mathcolor", "width"}
    assert "<img" not in html and "&lt;/math&gt;&lt;img" in html


def formula_notebook(source):
    nb = page_attacks.attack_notebook()
    nb.cells[0].source = f"{page_attacks.ANSWER_TEXT}\n\n{source}\n\nAfter: $x^2$."
    nb.cells[1].outputs = []
    return nb


@pytest.mark.parametrize("nh3", [True, False], ids=["nh3", "without nh3"])
@pytest.mark.parametrize("source", FORMULAS.values(), ids=FORMULAS.keys())
def test_a_students_formula_brings_no_markup(source, nh3, monkeypatch):
    if not nh3:
        monkeypatch.setattr(pages, "CLEANER", pages.NO_CLEANING)
    html = feedback_page(formula_notebook(source))
    assert probes_outside_text(html) == []
    body = Parts(html.split("</head>")[1])
    assert "script" not in body.tags and "img" not in body.tags
    for tag, name, value in body.attributes:
        if tag in pages.MATHML_TAGS:
            assert name in pages.MATHML_ATTRIBUTES and re.fullmatch(r"[\w.+\-#% ]*", value)
    # the page is there, with the cell's text and its last formula
    assert page_attacks.ANSWER_TEXT in html
    assert "After: <math><msup><mi>x</mi><mn>2</mn></msup></math>." in html


def test_a_feedback_pages_formulas_are_mathml_and_it_has_no_script():
    nb = nbformat.v4.new_notebook(cells=[new_markdown_cell(
        "Inline $Y = \\sum_i X_i \\star K_i$, \\\\(a < b\\\\), and displayed:\n\n"
        "$$o = \\left\\lfloor \\frac{n + 2p - k}{s} \\right\\rfloor + 1$$\n\n"
        "\\begin{equation} y = W x \\end{equation}")])
    html = feedback_page(nb)
    assert "<script" not in html
    assert html.count("<math") == 4 and html.count('<math display="block">') == 2
    assert "$" not in html.split("</head>")[1]
    assert "<mo>⋆</mo>" in html and "<munder><mo>∑</mo><mi>i</mi></munder>" not in html
    assert "<msub><mi>X</mi><mi>i</mi></msub>" in html
