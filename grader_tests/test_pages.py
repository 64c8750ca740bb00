"""convgrader.pages: the pages made from a notebook pass nh3 last, and keep what they show.

The attack notebook (page_attacks.py) is rendered as the formgrader serves it and as
generate_feedback writes it, with the course's config and without the notebook-level
sanitizing: nh3 alone must stop it. The same tests with nh3 switched off see the attacks
(test_without_nh3_the_attacks_reach_both_pages), so they test what they name.
"""
import copy
import re
from collections import Counter

import nbformat
import pytest
import tinycss2
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

import page_attacks
from convgrader import feedback, mathml, pages
from course_copies import COURSE_ROOT
from page_attacks import PNG, Parts, attack_notebook, feedback_page, formgrade_page, probes_outside_text


@pytest.fixture
def without_nh3(monkeypatch):
    monkeypatch.setattr(pages, "CLEANER", pages.NO_CLEANING)


# ---- The nh3 step alone ------------------------------------------------------------------

VECTORS = {
    "img onerror": "<img src=x onerror=alert(1)>",
    "unquoted width": "<img src=\"data:image/png;base64,AAAA\" width=1 onerror=alert(1)>",
    "quote then onerror": "<img src=\"data:image/png;base64,AAAA\" width=\"1\"onerror=alert(1)>",
    "script": "<script>alert(1)</script>",
    "svg onload": "<svg onload=alert(1)><circle r=5 /></svg>",
    "javascript href": "<a href=\"javascript:alert(1)\">x</a>",
    "entity javascript href": "<a href=\"jav&#x61;script:alert(1)\">x</a>",
    "tab in javascript href": "<a href=\"java\tscript:alert(1)\">x</a>",
    "data html href": "<a href=\"data:text/html;base64,PHNjcmlwdD4=\">x</a>",
    "data svg img": "<img src=\"data:image/svg+xml;base64,PHN2Zz4=\">",
    "relative link": "<a href=\"evil.html\">x</a>",
    "remote image": "<img src=\"https://example.org/pixel.png\">",
    "style element": "<style>body { background: url(/x) }</style>",
    "style url": "<div style=\"background-image: url(/x); color: red\">x</div>",
    "iframe srcdoc": "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "object": "<object data=\"data:text/html,<script>alert(1)</script>\"></object>",
    "form": "<form action=\"javascript:alert(1)\"><button formaction=\"/x\">go</button></form>",
    "meta refresh": "<meta http-equiv=refresh content=\"0;url=javascript:alert(1)\">",
    "base": "<base href=\"javascript:alert(1)//\">",
    "math": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "noscript mutation": "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "template": "<template><img src=x onerror=alert(1)></template>",
    "comment": "<!--><img src=x onerror=alert(1)>-->",
}


@pytest.mark.parametrize("html", VECTORS.values(), ids=VECTORS.keys())
def test_nh3_keeps_only_the_allow_list(html):
    parts = Parts(str(pages.clean_html(html)))
    assert set(parts.tags) <= pages.TAGS
    for tag, name, value in parts.attributes:
        assert name in pages.ATTRIBUTES["*"] | pages.ATTRIBUTES.get(tag, set()) | {"rel"}
        if name == "src":
            assert value.startswith(pages.RASTER_DATA_URLS)
        if name == "href":
            assert value.startswith(("#", "http://", "https://"))
        if name == "style":
            assert "url" not in value
    assert parts.code == []


def test_nh3_keeps_what_the_course_pages_show():
    html = (
        '<h2 id="Sum">Sum<a class="anchor-link" href="#Sum">¶</a></h2>'
        f'<p>$Y = \\sum_i X_i \\star K_i$, $a < b$, <code>x</code></p>'
        f'<img src="data:image/png;base64,{PNG}" width="300" alt="figure">'
        '<table><thead><tr><th style="text-align: left">a</th></tr></thead>'
        '<tbody><tr><td>1</td></tr></tbody></table>'
        '<div class="highlight hl-ipython3"><pre><span class="n">x</span></pre></div>'
        '<pre><span class="ansi-red-fg">FAILED</span> <span style="color: rgb(1,2,3)">c</span></pre>'
        '<a href="https://d2l.ai">d2l</a> <a href="#top">(Top)</a> <a name="cell-1"></a>')
    clean = str(pages.clean_html(html))
    assert '<h2 id="user-content-Sum">' in clean
    assert 'href="#user-content-Sum"' in clean  # the link still finds its heading
    assert "$Y = \\sum_i X_i \\star K_i$, $a &lt; b$" in clean  # the formgrader's, for MathJax
    assert f'src="data:image/png;base64,{PNG}"' in clean and 'width="300"' in clean
    assert '<th style="text-align:left">' in clean and "<td>1</td>" in clean
    assert '<div class="highlight hl-ipython3"><pre><span class="n">x</span>' in clean
    assert '<span class="ansi-red-fg">FAILED</span>' in clean
    assert 'style="color:rgb(1, 2, 3)"' in clean
    assert 'href="https://d2l.ai"' in clean and 'href="#top"' in clean
    assert 'name="user-content-cell-1"' in clean


def test_nh3_keeps_the_mathml_of_formulas():
    for tex, display in ((r"Y = \sum_{a, b} X[i + a] \cdot K_{a}^{2}", "block"),
                         (r"o = \left\lceil \frac{n}{s} \right\rceil \quad \text{if } \hat Y",
                          "inline"),
                         (r"\begin{pmatrix}1 & 2\\3 & 4\end{pmatrix} \sqrt[3]{x} \color{red}{z}",
                          "inline")):
        html = mathml.tex_to_mathml(tex, display)
        assert html.startswith("<math")
        assert str(pages.clean_html(html)).replace("&nbsp;", "\xa0") == html


def test_nh3_keeps_no_mathml_link_or_action():
    html = ('<math><mrow href="javascript:alert(1)" style="background:url(/x)">'
            '<mi>x</mi></mrow><maction actiontype="statusline"><mi>y</mi><mtext>z</mtext>'
            '</maction><semantics><mi>w</mi><annotation-xml encoding="text/html">'
            '<img src=x onerror=alert(1)></annotation-xml></semantics>'
            '<mspace width="1em&quot; onclick=&quot;x"></mspace></math>')
    clean = str(pages.clean_html(html))
    assert "href" not in clean and "url" not in clean and "onerror" not in clean
    assert "maction" not in clean and "annotation" not in clean and "width" not in clean
    assert "<mi>x</mi>" in clean and "<mi>y</mi>" in clean


def test_unknown_classes_and_ids_cannot_stand_for_the_formgraders_controls():
    clean = str(pages.clean_html('<div class="score tabbable nbgrader_cell" id="answer">x</div>'))
    assert clean == '<div class="nbgrader_cell" id="user-content-answer">x</div>'


def test_text_is_text_in_any_attribute():
    assert str(pages.clean_text('a" onerror=x b')) == "a&quot;&#32;onerror&#61;x&#32;b"


# ---- The pages -----------------------------------------------------------------------------

def test_the_formgraders_page_has_no_active_content_from_the_notebook():
    html = formgrade_page(attack_notebook())
    assert probes_outside_text(html) == []
    assert page_attacks.ANSWER_TEXT in html and "code ran" in html
    # nbgrader's controls are all there: scripts, score input and comment boxes, named by id
    stock = Parts(formgrade_page(nbformat.v4.new_notebook()))
    parts = Parts(html)
    assert parts.tags.count("script") == stock.tags.count("script") > 5
    ids = {value for _, name, value in parts.attributes if name == "id"}
    assert {"answer", "answer-comment", "answer_extra_credit", "code-comment"} <= ids


def without_styles(head):
    return re.sub(r"(<style[^>]*>).*?</style>", r"\1</style>", head, flags=re.DOTALL)


def css_rules(head):
    """Each rule of the head's style elements: (its @media or "", its text)."""
    def flatten(rules, media=""):
        for rule in rules:
            if rule.type == "at-rule" and rule.lower_at_keyword == "media":
                yield from flatten(tinycss2.parse_rule_list(rule.content, True, True),
                                   tinycss2.serialize(rule.prelude).strip())
            elif rule.type != "comment":
                yield media, tinycss2.serialize([rule]).strip()
    return {rule for css in re.findall(r"<style[^>]*>(.*?)</style>", head, re.DOTALL)
            for rule in flatten(tinycss2.parse_stylesheet(css, True, True))}


def test_the_feedback_page_has_no_active_content_and_a_head_of_the_templates(monkeypatch):
    nb = attack_notebook()
    html = feedback_page(copy.deepcopy(nb))
    assert probes_outside_text(html) == []
    assert page_attacks.ANSWER_TEXT in html
    head, body = html.split("</head>")
    assert "<script" not in html and "<style" not in body
    # the same head for every notebook, but for the CSS rules the page cannot use
    empty = feedback_page(nbformat.v4.new_notebook()).split("</head>")[0]
    assert without_styles(head) == without_styles(empty)
    monkeypatch.setattr(feedback, "used_css_only", lambda page: page)
    full = feedback_page(nb).split("</head>")[0]
    assert full == feedback_page(nbformat.v4.new_notebook()).split("</head>")[0]
    assert css_rules(head) < css_rules(full)
    assert len(head) < 20_000 < 100_000 < len(full)  # Bootstrap 3 is 117 KB


def test_a_feedback_page_keeps_the_css_rules_it_can_use():
    page = ('<!DOCTYPE html><html><head><title>t</title><style type="text/css">'
            '/*! Licence */ /* note */ .used{a:1} .unused{b:2} p{c:3} .used .unused{d:4} '
            '.used:not(.unused){e:5} #top{f:6} #gone{g:7} .used,.unused{h:8} '
            '@media print{.used{i:9}.unused{j:10}} @media screen{.unused{k:11}} '
            '@font-face{font-family:"Icons";src:url(icons.woff)} .unused{font-family:Icons} '
            '@font-face{font-family:Serif2;src:url(s.woff)} .used{font-family:"Serif2"} '
            '@keyframes spin{from{l:12}} @-webkit-keyframes spin{from{l:12}} '
            '@keyframes stop{from{m:13}} .used{animation:spin 1s}</style>\n</head>\n'
            '<body><p class="used other" id="top">x</p><p>.unused #gone</p></body></html>')
    head = feedback.used_css_only(page).split("</head>")[0]
    for kept in ("/*! Licence */", ".used{a:1}", "p{c:3}", ".used:not(.unused){e:5}",
                 "#top{f:6}", ".used,.unused{h:8}", "@media print{.used{i:9}}",
                 '@font-face{font-family:Serif2;', "@keyframes spin", "@-webkit-keyframes spin",
                 '<title>t</title><style type="text/css">'):
        assert kept in head
    for gone in ("note", "b:2", "d:4", "g:7", "j:10", "k:11", "Icons", "stop"):
        assert gone not in head
    assert feedback.used_css_only(page).split("</head>")[1] == page.split("</head>")[1]


def test_highlighted_code_has_a_span_only_where_the_pages_css_styles_one():
    """Names and punctuation, which the style leaves as the code's text, had a span each:
    a third of the largest pages' bytes, doing nothing in a page with no script."""
    nb = nbformat.v4.new_notebook(cells=[new_code_cell(
        "import torch\nx = torch.ones((2, 3))  # a comment\nprint(f'{x.sum():g}', 1.5)")])
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    head, body = feedback_page(nb).split("</head>")
    classes = Counter(re.findall(r'<span class="([^"]+)">', body))
    assert {"kn", "c1", "mi", "mf", "s1", "nb"} <= set(classes), classes
    assert not {"n", "p"} & set(classes), classes
    styled = {rule.split("{")[0].split(".")[-1].strip()
              for _, rule in css_rules(head) if rule.startswith(".highlight .")}
    assert set(classes) <= styled, set(classes) - styled
    text = re.sub(r"<[^>]+>", "", body)
    assert "x = torch.ones((2, 3))" in text.replace("&#39;", "'")


def test_the_feedback_pages_title_is_text():
    html = feedback_page(nbformat.v4.new_notebook(), notebook="a</title><script>x()</script>")
    assert "<title>a&lt;/title&gt;&lt;script&gt;x()&lt;/script&gt;</title>" in html
    assert "<script>x()" not in html


@pytest.mark.parametrize("page", [formgrade_page, feedback_page], ids=["formgrader", "feedback"])
def test_nh3_alone_is_enough_without_nbconverts_sanitizing(page):
    # HTML outputs as they are, JavaScript and SVG outputs written as script and markup
    assert probes_outside_text(page(attack_notebook(), nbconvert_sanitizing=False)) == []


def test_without_nh3_the_attacks_reach_both_pages(without_nh3):
    nb = attack_notebook()
    for html in formgrade_page(nb), feedback_page(nb):
        found = " ".join(probes_outside_text(html))
        for probe in "width", "height-quotes", "jpeg-width", "markdown-img", "markdown-srcdoc":
            assert f"probe={probe}" in found
    for page in formgrade_page, feedback_page:
        found = " ".join(probes_outside_text(page(nb, nbconvert_sanitizing=False)))
        for probe in "svg-onload", "html-img", "style-import", "srcdoc", "javascript-output":
            assert f"probe={probe}" in found


def course_notebook():
    """01's solution notebook with the kinds of output a graded notebook shows."""
    nb = nbformat.read(COURSE_ROOT / "source" / "01_multi_input_channels" /
                       "01_multi_input_channels.ipynb", as_version=4)
    for cell in nb.cells:  # graded, as GetGrades gives feedback the scores
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.metadata.nbgrader.score = cell.metadata.nbgrader.points
    nb.cells.append(new_markdown_cell("## Check\n\n| a | b |\n|:--|--:|\n| 1 | 2 |\n\n"
                                      "$Y = \\sum_i X_i \\star K_i$ and $a < b$"))
    nb.cells.append(new_code_cell("fig; check(x)", execution_count=3, outputs=[
        new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"},
                   metadata={"image/png": {"width": 300}}),
        new_output("stream", name="stdout", text="FAILED: corr2d_multi_in: expected (2, 2)\n"),
        new_output("execute_result", data={"text/plain": "tensor([1., 2.])"},
                   execution_count=3),
        new_output("error", ename="AssertionError", evalue="shape",
                   traceback=["\x1b[0;31mAssertionError\x1b[0m: shape <2, 3> expected"])]))
    return nb


@pytest.mark.parametrize("page", [formgrade_page, feedback_page], ids=["formgrader", "feedback"])
def test_the_course_pages_look_as_without_nh3(page, monkeypatch):
    nb = course_notebook()
    clean = Parts(page(copy.deepcopy(nb)))
    monkeypatch.setattr(pages, "CLEANER", pages.NO_CLEANING)
    stock = Parts(page(nb))

    def classes(parts):
        return {c for _, name, value in parts.attributes if name == "class" for c in value.split()}

    def seen(parts, attribute):
        return [value for _, name, value in parts.attributes if name == attribute]

    assert classes(clean) == classes(stock)
    assert seen(clean, "src") == seen(stock, "src")
    assert any(src.startswith("data:image/png;base64,") for src in seen(clean, "src"))
    # every element but the nested <body> nbgrader's template writes inside its own
    assert Counter(t for t in clean.tags if t != "body") == \
        Counter(t for t in stock.tags if t != "body")
