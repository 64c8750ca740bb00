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
are often offline. ``FeedbackExporter`` (``c.GenerateFeedback.exporter_class``) puts MathJax
in the page itself, so formulas render without any network (stock pages load it from a
CDN and show raw ``$...$`` offline), and makes long lines of text outputs wrap in their box.
Its page's body passes nh3 last (``convgrader.pages``): only that head is the course's own.
"""
import functools
import importlib.resources
import re

import markupsafe
from jinja2 import DictLoader
from nbconvert.exporters import HTMLExporter
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearHiddenTests

from convgrader import pages


class ClearKnownHiddenTests(ClearHiddenTests):
    """``ClearHiddenTests`` on the gradebook's test cells only."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            solutions = {c.name for c in notebook.solution_cells}
            self._tests = {c.name for c in notebook.grade_cells} - solutions
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        if utils.is_grade(cell) and cell.metadata.nbgrader.get("grade_id") in self._tests:
            return super().preprocess_cell(cell, resources, cell_index)
        return cell, resources


# ---- The feedback page: a file a student opens alone, often offline ----------------------

# nbconvert's templates call its ``mathjax()`` macro once, in the page's head, which loads
# MathJax 2 from a CDN (nbgrader's feedback template gives it no URL, so
# ``HTMLExporter.mathjax_url`` does not reach it). In its place the head gets the course's
# style and MathJax 3 itself, whose "tex-svg" build is one file that fetches nothing.
MATHJAX_MACRO = """\
{%- macro mathjax(url=None) -%}
{{ feedback_page_head() }}
{%- endmacro %}
"""

MATHJAX_CONFIG = r"""
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "ams",
    // Nothing is fetched, and students' formulas cannot make links or styles: without these
    // two, \require and the macros of extensions (\href, \style, \class, ...) are undefined.
    packages: {"[-]": ["require", "autoload"]}
  },
  // The menu's accessibility options fetch extensions.
  options: {enableMenu: false}
};
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


@functools.cache
def mathjax_source():
    """MathJax 3's tex-svg build, from the django-static-mathjax package (requirements.txt)."""
    try:
        path = importlib.resources.files("mathjax") / "static" / "mathjax" / "es5" / "tex-svg.js"
        source = path.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise RuntimeError("MathJax for the feedback pages is missing: install the course's "
                           "requirements (make install, or pip install -r requirements.txt)"
                           ) from error
    # Inline, "</script" would end the element early; "<script" after "<!--" would keep it open.
    if re.search(r"</?script", source, re.IGNORECASE):
        raise RuntimeError(f"{path} cannot be put inside a <script> element")
    return source


def feedback_page_head():
    return markupsafe.Markup(  # noqa: S704 - the course's own style and script, no submission's
        f"<style>{WRAP_OUTPUT_CSS}</style>\n"
        f"<script>{MATHJAX_CONFIG}</script>\n"
        f"<script>{mathjax_source()}</script>")


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter, with the page's head made to work offline: MathJax inline
    instead of from a CDN, and text outputs that wrap; the page's body cleaned by nh3.

    ``c.GenerateFeedback.exporter_class`` selects it, for feedback only: the formgrader builds
    its own HTMLExporter. The page grows by MathJax's 2.1 MB; in exchange it needs nothing
    but itself, opened from disk or served, online or not.

    Its last step is nh3 (``convgrader.pages``): everything after the head, made by nbgrader's
    "feedback" template from the notebook and the grades, is cleaned with the course's
    allow-list; the head is the template's CSS, the course's style and MathJax, and the
    notebook's name as text.
    """

    def __init__(self, config=None, **kw):
        super().__init__(config=config, **kw)
        # Tried before the template folders: our 'mathjax.html.j2' wins over nbconvert's.
        self.extra_loaders = [DictLoader({"mathjax.html.j2": MATHJAX_MACRO}),
                              *self.extra_loaders]

    def _create_environment(self):
        environment = super()._create_environment()
        environment.globals["feedback_page_head"] = feedback_page_head
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):
        # The notebook's name is the page's title, in the head: as text.
        if resources and "notebook" in resources.get("nbgrader", {}):
            resources = {**resources, "nbgrader": {
                **resources["nbgrader"],
                "notebook": pages.clean_text(resources["nbgrader"]["notebook"])}}
        html, resources = super().from_notebook_node(nb, resources, **kw)
        return pages.clean_page(html), resources
