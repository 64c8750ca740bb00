"""Pages made from a notebook whose every part tries to run script (or load something) in them.

The notebook is written as the formgrader and generate_feedback read it from autograded/, not
made by autograde: so only the pages' own sanitizing (convgrader/pages.py) stands between it
and the browser. Each vector would request ``/api/contents?probe=<name>`` from the Jupyter
server, which records it; the page helpers render as nbgrader does, with the course's config.
FORMULAS are what a student's formulas may try (test_mathml, and test_autograde in Chromium).
"""
import base64
import os
from html.parser import HTMLParser

import nbgrader
from nbconvert.exporters import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell
from traitlets.config.loader import PyFileConfigLoader

from convgrader.feedback import FeedbackExporter
from course_copies import COURSE_ROOT

PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()
ANSWER_TEXT = "Mallory's answer: the channels are summed after each correlation."
ASSIGNMENT = "99_pages"
NOTEBOOK = "attack"
STUDENT = "mallory"


def probe(name):
    return f"fetch('/api/contents?probe={name}')"


def _image(mime, metadata):
    return new_output("display_data", data={mime: PNG, "text/plain": "<Figure>"},
                      metadata={mime: metadata})


# Output metadata written into the image's tag by nbconvert's classic template (the image is
# a real one: onload runs, as onerror would for a broken one).
IMAGE_OUTPUTS = [
    _image("image/png", {"width": f"1 onload={probe('width')}"}),
    _image("image/png", {"height": f"1\" onload=\"{probe('height-quotes')}\""}),
    _image("image/png", {"width": f"x\"onload={probe('quote-onload')}"}),
    _image("image/png", {"height": f"1 onerror={probe('onerror')} src=x"}),
    _image("image/png", {"alt": f"\"><img src=x onerror={probe('alt')}>"}),
    _image("image/jpeg", {"width": f"1 onload={probe('jpeg-width')} onerror={probe('jpeg-width')}"}),
    new_output("display_data", data={"image/png": PNG},
               metadata={"filenames": {"image/png": f"javascript:{probe('filenames')}"}}),
]
HTML = (
    f"<svg onload=\"{probe('svg-onload')}\"><circle r=5 /></svg>"
    f"<img src=x onerror=\"{probe('html-img')}\">"
    "<style>@import url(/api/contents?probe=style-import);"
    " body { background: url(/api/contents?probe=style-url) }</style>"
    "<div style=\"background-image: url(/api/contents?probe=style-attribute)\">styled</div>"
    f"<iframe srcdoc=\"<script>{probe('srcdoc')}</script>\"></iframe>"
    f"<a class=\"user-link\" href=\"javascript:{probe('javascript-href')}\">javascript link</a>"
    "<a class=\"user-link\" href=\"data:text/html;base64,"
    + base64.b64encode(f"<script>{probe('data-html')}</script>".encode()).decode()
    + "\">data link</a>"
)
MARKDOWN = (
    f"{ANSWER_TEXT}\n\n"
    f"<img src=x onerror=\"{probe('markdown-img')}\">\n\n"
    f"[javascript link](javascript:{probe('markdown-javascript')})\n\n"
    f"<svg onload=\"{probe('markdown-svg')}\"></svg>\n\n"
    "<style>body { background: url(/api/contents?probe=markdown-style) }</style>\n\n"
    f"<iframe srcdoc=\"<script>{probe('markdown-srcdoc')}</script>\"></iframe>\n"
)

# What a student's markdown cell may try through its formulas: each tries to fetch its probe.
FORMULAS = {
    "href": f"$\\href{{javascript:{probe('href')}}}{{x}}$",
    "html in the formula": f"$<img src=x onerror=\"{probe('img')}\">$",
    # latex2mathml writes a space of \text as a no-break space: slashes instead
    "html in text": f"$\\text{{<img/src=x/onerror={probe('text')}>}}$",
    "closing the math": f"$\\text{{</mtext></math><img/src=x/onerror={probe('close')}>}}$",
    "style": "$\\style{background: url(/api/contents?probe=style)}{x}$",
    "colour with a quote": f"$\\color{{red\" onmouseover=\"{probe('color')}}}{{x}}$",
    "class": "$\\class{score tabbable}{x}$",
    "display": f"$$\\text{{<script>{probe('script')}</script>}}$$",
    "environment":
        f"\\begin{{align}} a &= \\href{{javascript:{probe('align')}}}{{b}} \\end{{align}}",
    "unbalanced": "$\\frac{a$ and $x_{$",
    "macros": "$\\def\\a{\\a\\a}\\a$ $\\newcommand{\\b}[1]{#1#1}\\b{\\b{x}}$",
    "huge": "$" + "x+" * 50_000 + "x$",
    "huge display": "$$" + "\\frac{a}{b}" * 10_000 + "$$",
}


def attack_notebook():
    """The autograded notebook: a graded written answer, a graded code answer, and outputs."""
    answer = new_markdown_cell(MARKDOWN, metadata={"nbgrader": {
        "grade": True, "solution": True, "grade_id": "answer", "points": 1, "score": 1,
        "schema_version": 3, "locked": False}})
    code = new_code_cell("print('Mallory')", metadata={
        "tags": [f"x\" onmouseover=\"{probe('tag')}"],
        "nbgrader": {"grade": False, "solution": True, "grade_id": "code",
                     "schema_version": 3, "locked": False}}, outputs=[
        *IMAGE_OUTPUTS,
        new_output("display_data", data={"text/html": HTML, "text/plain": "<HTML>"}),
        new_output("display_data", data={"text/html": f"<script>{probe('isolated')}</script>"},
                   metadata={"text/html": {"isolated": True}}),
        new_output("display_data", data={"text/markdown": MARKDOWN, "text/plain": "<Md>"}),
        new_output("display_data", data={"application/javascript": probe("javascript-output")}),
        new_output("display_data", data={"image/svg+xml": (
            "<svg xmlns='http://www.w3.org/2000/svg' onload=\"" + probe("svg-output") + "\"/>")}),
        new_output("stream", name="stdout", text="Mallory's code ran\n"),
    ])
    raw = new_raw_cell(f"<img src=x onerror=\"{probe('raw')}\">",
                       metadata={"raw_mimetype": "text/html"})
    return new_notebook(cells=[answer, code, raw], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def add_to_gradebook(gb):
    """The assignment, its notebook's cells and Mallory's submission, as autograde leaves them."""
    gb.update_or_create_assignment(ASSIGNMENT)
    gb.add_notebook(NOTEBOOK, ASSIGNMENT)
    gb.add_grade_cell("answer", NOTEBOOK, ASSIGNMENT, max_score=1, cell_type="markdown")
    gb.add_solution_cell("answer", NOTEBOOK, ASSIGNMENT)
    gb.add_solution_cell("code", NOTEBOOK, ASSIGNMENT)
    gb.update_or_create_student(STUDENT)
    gb.add_submission(ASSIGNMENT, STUDENT)
    return gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, STUDENT).id


def course_config():
    os.environ.setdefault("CONVCOURSE_CELL_TIMEOUT", "60")
    return PyFileConfigLoader("nbgrader_config.py", path=str(COURSE_ROOT)).load_config()


def formgrade_page(nb, nbconvert_sanitizing=True):
    """The page the formgrader's SubmissionHandler serves for ``nb``: nbconvert's HTMLExporter
    with the course's config and what nbgrader's FormgradeExtension adds to it."""
    config = course_config()
    config.HTMLExporter.template_name = "formgrade"  # FormgradeExtension.build_extra_config
    config.HTMLExporter.sanitize_html = nbconvert_sanitizing
    resources = {"assignment_id": ASSIGNMENT, "notebook_id": NOTEBOOK, "submission_id": "s1",
                 "index": 0, "total": 1, "base_url": "", "student": STUDENT,
                 "last_name": "", "first_name": "", "notebook_path": "autograded/x.ipynb"}
    html, _ = HTMLExporter(config=config).from_notebook_node(nb, resources=resources)
    return html


def feedback_page(nb, notebook=NOTEBOOK, nbconvert_sanitizing=True):
    """The page `nbgrader generate_feedback` writes for ``nb`` with the course's exporter
    (GenerateFeedback's template settings, its preprocessors left out)."""
    config = course_config()
    config.HTMLExporter.template_name = "feedback"  # as GenerateFeedback sets them
    config.HTMLExporter.sanitize_html = nbconvert_sanitizing
    config.HTMLExporter.extra_template_paths = [os.path.join(
        os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader", "static",
        "node_modules", "bootstrap", "dist", "css")]
    resources = {"nbgrader": {"notebook": notebook, "score": 1.0, "max_score": 2.0,
                              "late_penalty": 0}}
    html, _ = FeedbackExporter(config=config).from_notebook_node(nb, resources=resources)
    return html


class Parts(HTMLParser):
    """A page's tags, attributes, and the text of its script and style elements."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.tags, self.attributes, self.code = [], [], []
        self._in = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend((tag, name, value or "") for name, value in attrs)
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in:
            self.code.append(data)


# Attributes whose value is an address, a style or a document: a probe there is loaded or run.
ACTIVE_ATTRIBUTES = {"href", "src", "srcdoc", "srcset", "style", "action", "formaction", "data",
                     "poster", "background", "xlink:href", "ping"}


def probe_names(text):
    """The probes ``text`` calls: the names after each ``probe=``."""
    return [piece[:len(piece) - len(piece.lstrip("abcdefghijklmnopqrstuvwxyz-"))]
            for piece in text.split("probe=")[1:]]


def probes_outside_text(html):
    """Every place a probe reached as markup, as "<tag attribute> probe=name": an event
    handler, an address, a style, a script or a style element. A probe in the page's text, or
    in an attribute that is only text (alt, title, class), is only shown."""
    parts = Parts(html)
    found = [f"<{tag} {name}> probe={probe}" for tag, name, value in parts.attributes
             if name.startswith("on") or name in ACTIVE_ATTRIBUTES
             for probe in probe_names(value)]
    found += [f"<script/style> probe={probe}" for code in parts.code
              for probe in probe_names(code)]
    return found
