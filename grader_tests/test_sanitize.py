"""convgrader.sanitize: no active content of a submission survives into grading pages.

Each attack vector goes through the preprocessor, then the result is checked twice: in the
notebook (what other viewers read) and in the page nbgrader's formgrader would serve for it,
exported with the formgrade template and nbconvert's own sanitizing *off*, so that the
preprocessor alone must make it safe. The course's own kinds of output stay as they were.
"""
import base64
import copy
import os

import nbformat
import pytest
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell
from traitlets.config.loader import PyFileConfigLoader

from convgrader.sanitize import NOTE, SanitizeSubmission
from course_copies import COURSE_ROOT
from sanitized_pages import active_content, formgrade_page, sanitized

PROBE = "fetch('/api/contents?probe=x')"
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()


def markdown_html(source, attachments=None):
    """A markdown cell as nbconvert's HTMLExporter renders it (the formgrader's renderer)."""
    renderer = IPythonRenderer(escape=False, attachments=attachments or {})
    return MarkdownWithMath(renderer=renderer).render(source)


def html_output(html):
    return new_code_cell("display(HTML(...))", outputs=[new_output(
        "display_data", data={"text/html": html, "text/plain": "<IPython.core.display.HTML object>"})])


def page_findings(nb):
    """Active content in the formgrade page of ``nb`` beyond what the template itself has."""
    empty = active_content(formgrade_page(new_notebook()))
    found = active_content(formgrade_page(nb))
    for item in empty:
        found.remove(item)
    return found


HTML_VECTORS = {
    "script tag": f"<script>{PROBE}</script>",
    "img onerror": f"<img src=x onerror=\"{PROBE}\">",
    "javascript: URL": f"<a href=\"javascript:{PROBE}\">click</a>",
    "entity-encoded javascript: URL": "<a href=\"jav&#x61;script:alert(1)\">click</a>",
    "svg onload": f"<svg onload=\"{PROBE}\"><circle r=5 /></svg>",
    "svg script": f"<svg><script>{PROBE}</script></svg>",
    "iframe": f"<iframe src=\"javascript:{PROBE}\"></iframe>",
    "iframe srcdoc": f"<iframe srcdoc=\"<script>{PROBE}</script>\"></iframe>",
    "object": "<object data=\"data:text/html,<script>alert(1)</script>\"></object>",
    "style tag": "<style>body { background: url(javascript:alert(1)) }</style>",
    "form action": "<form action=\"javascript:alert(1)\"><button>go</button></form>",
    "mutation": "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
}


@pytest.mark.parametrize("html", HTML_VECTORS.values(), ids=HTML_VECTORS.keys())
def test_html_outputs_are_cleaned(html):
    nb = sanitized(html_output(html))
    output = nb.cells[0].outputs[0]
    assert active_content(output.data["text/html"]) == []
    assert output.data["text/plain"] == "<IPython.core.display.HTML object>"
    assert page_findings(nb) == []


def test_html_outputs_keep_what_is_harmless_and_show_the_rest_as_text():
    nb = sanitized(html_output(f"<b>bold</b> <code>x</code><script>{PROBE}</script>"))
    html = nb.cells[0].outputs[0].data["text/html"]
    assert html.startswith("<b>bold</b> <code>x</code>")
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize("mime, data", [
    ("application/javascript", PROBE),
    ("text/javascript", PROBE),
    ("image/svg+xml", f"<svg xmlns='http://www.w3.org/2000/svg' onload=\"{PROBE}\">"
                      f"<script>{PROBE}</script></svg>"),
    ("application/vnd.jupyter.widget-view+json", {"model_id": "x", "version_major": 2,
                                                  "version_minor": 0}),
    ("application/pdf", "JVBERi0="),
], ids=["display(Javascript)", "text/javascript", "svg output", "widget view", "pdf"])
def test_other_output_types_are_removed(mime, data):
    alone = new_code_cell("x", outputs=[new_output("display_data", data={mime: data})])
    beside_text = new_code_cell("x", outputs=[new_output(
        "execute_result", data={mime: data, "text/plain": "<object>"}, execution_count=1)])
    nb = sanitized(alone, beside_text)
    assert nb.cells[0].outputs[0].data == {"text/plain": f"[{mime} output removed by the grader]"}
    assert nb.cells[1].outputs[0].data == {"text/plain": "<object>"}
    assert page_findings(nb) == []


def test_markdown_outputs_are_treated_like_markdown_cells():
    cell = new_code_cell("display(Markdown(...))", outputs=[new_output("display_data", data={
        "text/markdown": f"see [here](javascript:{PROBE}) <img src=x onerror=\"{PROBE}\">",
        "text/plain": "<Markdown>"})])
    nb = sanitized(cell)
    markdown = nb.cells[0].outputs[0].data["text/markdown"]
    assert markdown.startswith(NOTE)
    assert active_content(markdown_html(markdown)) == []
    assert page_findings(nb) == []


MARKDOWN_VECTORS = {
    "raw img onerror": f"My answer.\n\n<img src=x onerror=\"{PROBE}\">",
    "inline img onerror": f"My answer <img src=x onerror=\"{PROBE}\"> inline.",
    "script tag": f"My answer.\n\n<script>{PROBE}</script>",
    "script in a heading": f"# My answer <script>{PROBE}</script>",
    "script in a table": f"| My answer | b |\n|---|---|\n| <script>{PROBE}</script> | 2 |",
    "svg": f"My answer.\n\n<svg onload=\"{PROBE}\"></svg>",
    "iframe": "My answer.\n\n<iframe src=\"javascript:alert(1)\"></iframe>",
    "javascript link": f"My answer: [click](javascript:{PROBE})",
    "encoded javascript link": "My answer: [click](jav&#x61;script:alert(1))",
    "percent-encoded javascript link": "My answer: [click](java%73cript:alert(1))",
    "reference javascript link": "My answer: [click][r]\n\n[r]: javascript:alert(1)",
    "javascript autolink": "My answer: <javascript:alert(1)>",
    "data html link": "My answer: [click](data:text/html;base64,PHNjcmlwdD4=)",
    "html anchor": "My answer: <a href=\"javascript:alert(1)\">click</a>",
}


@pytest.mark.parametrize("source", MARKDOWN_VECTORS.values(), ids=MARKDOWN_VECTORS.keys())
def test_markdown_with_html_or_harmful_links_is_shown_as_text(source):
    nb = sanitized(new_markdown_cell(source))
    cell = nb.cells[0]
    assert cell.cell_type == "markdown"
    assert cell.source.startswith(NOTE)
    html = markdown_html(cell.source)
    assert active_content(html) == []
    assert "<a " not in html  # no link at all
    assert "My answer" in html  # the student's text is still shown
    assert page_findings(nb) == []


def test_markdown_shown_as_text_keeps_the_source_readable():
    source = "Because ```x``` sums <b>channels</b>\n\n```python\nprint(1)\n```"
    nb = sanitized(new_markdown_cell(source))
    html = markdown_html(nb.cells[0].source)
    assert "&lt;b&gt;channels&lt;/b&gt;" in html
    assert "print(1)" in html and "```python" in html  # the student's own fence is text too
    assert html.count("<pre>") == 1


def test_markdown_attachments_keep_only_raster_images():
    svg = base64.b64encode(f"<svg xmlns='http://www.w3.org/2000/svg' onload=\"{PROBE}\"/>"
                           .encode()).decode()
    page = base64.b64encode(f"<script>{PROBE}</script>".encode()).decode()
    cell = new_markdown_cell(
        "My answer: ![figure](attachment:figure.png) ![evil](attachment:evil.svg) "
        "![page](attachment:page.html)",
        attachments={"figure.png": {"image/png": PNG},
                     "evil.svg": {"image/svg+xml": svg, "image/png": PNG},
                     "page.html": {"text/html": page}})
    nb = sanitized(cell)
    attachments = nb.cells[0].attachments
    assert attachments["figure.png"] == {"image/png": PNG}
    assert attachments["evil.svg"] == {"image/png": PNG}
    assert list(attachments["page.html"]) == ["text/plain"]
    assert nb.cells[0].source == cell.source  # plain markdown: unchanged
    html = markdown_html(nb.cells[0].source, attachments)
    assert f"data:image/png;base64,{PNG}" in html
    assert "svg" not in html and "text/html" not in html
    assert page_findings(nb) == []


def test_an_image_of_a_missing_attachment_is_shown_as_text():
    # nbconvert fails on it, so the formgrader could not show the submission at all
    nb = sanitized(new_markdown_cell("My answer: ![x](attachment:missing.png)"))
    assert nb.cells[0].source.startswith(NOTE)
    assert "My answer" in formgrade_page(nb)


def test_raw_cells_are_cleaned():
    cell = new_raw_cell(f"<script>{PROBE}</script><img src=x onerror=\"{PROBE}\">",
                        metadata={"raw_mimetype": "text/html"})
    nb = sanitized(cell)
    assert active_content(nb.cells[0].source) == []
    assert page_findings(nb) == []


def test_output_metadata_cannot_point_images_elsewhere():
    cell = new_code_cell("x", outputs=[new_output(
        "display_data", data={"image/png": PNG, "text/plain": "<Figure>"},
        metadata={"filenames": {"image/png": "javascript:alert(1)"}})])
    nb = sanitized(cell)
    assert "filenames" not in nb.cells[0].outputs[0].metadata
    assert "javascript:" not in formgrade_page(nb)


def test_widget_state_is_removed():
    state = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                             "version_minor": 0}}
    nb = sanitized(new_markdown_cell("text"), metadata={"widgets": state, "kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    assert "widgets" not in nb.metadata
    assert "kernelspec" in nb.metadata


def test_legitimate_cells_and_outputs_are_untouched():
    cells = [
        new_markdown_cell("# Multiple input channels 多输入通道\n\nSum over $c_i$: "
                          "$Y = \\sum_i X_i \\star K_i$, `a < b`, **bold**, [d2l](https://d2l.ai)"
                          "\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nif a < b: pass\n```"),
        new_code_cell("print(1)", outputs=[
            new_output("stream", name="stdout", text="tensor([[ 56.,  72.]])\n<b>not html</b>\n"),
            new_output("stream", name="stderr", text="warning <script>\n")]),
        new_code_cell("fig", outputs=[new_output(
            "display_data", data={"image/png": PNG, "text/plain": "<Figure size 640x480>"},
            metadata={"needs_background": "light", "image/png": {"width": 300}})]),
        new_code_cell("x", outputs=[new_output(
            "execute_result", data={"text/plain": "tensor([1., 2.])"}, execution_count=3)]),
        new_code_cell("raise", outputs=[new_output(
            "error", ename="AssertionError", evalue="shape <2, 3> expected",
            traceback=["\x1b[0;31mAssertionError\x1b[0m: shape <2, 3> expected"])]),
    ]
    nb = new_notebook(cells=copy.deepcopy(cells))
    assert sanitized(*nb.cells) == new_notebook(cells=cells)


def test_the_course_config_sanitizes_autograde_and_feedback():
    os.environ.setdefault("CONVCOURSE_CELL_TIMEOUT", "60")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE_ROOT)).load_config()
    autograde = list(config.Autograde.autograde_preprocessors)
    here = autograde.index("convgrader.sanitize.SanitizeSubmission")
    assert autograde.index("nbgrader.preprocessors.LimitOutput") < here
    assert here < autograde.index("nbgrader.preprocessors.SaveAutoGrades")
    assert "convgrader.sanitize.SanitizeSubmission" in config.GenerateFeedback.preprocessors
    assert config.HTMLExporter.sanitize_html is True


def test_the_source_notebooks_pass_unchanged():
    for path in sorted((COURSE_ROOT / "source").glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        clean, _ = SanitizeSubmission().preprocess(copy.deepcopy(nb), {})
        assert clean == nb, f"{path.name} changed"
