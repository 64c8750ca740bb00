"""A submission as convgrader.sanitize leaves it, the page nbgrader's formgrader would serve
for it with nbconvert's own sanitizing off (so that the preprocessor alone must make it safe),
and what in an HTML text could still run script or load a document (active_content).
test_sanitize checks every attack vector with them; test_outputs and test_autograde reuse them.
"""
from html.parser import HTMLParser

import nbformat
from nbconvert.exporters import HTMLExporter
from nbformat.v4 import new_notebook
from traitlets.config import Config

from convgrader.sanitize import SanitizeSubmission

SCRIPT_TAGS = {"script", "iframe", "frame", "object", "embed", "svg", "math", "style", "link",
               "meta", "base", "form", "template", "noscript"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "background",
                  "poster", "srcdoc"}


class ActiveContent(HTMLParser):
    """What in an HTML text could run script or load a document: the findings, as strings."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag in SCRIPT_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            value = (value or "").strip().lower().replace("\n", "").replace("\t", "")
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}>")
            if name in URL_ATTRIBUTES and (
                    value.startswith(("javascript:", "vbscript:", "data:text/html",
                                      "data:image/svg")) or name == "srcdoc"):
                self.found.append(f"<{tag} {name}={value[:30]}>")


def active_content(html):
    """ActiveContent's findings in ``html``: empty when nothing in it can run or load."""
    parser = ActiveContent()
    parser.feed(html)
    parser.close()
    return parser.found


def sanitized(*cells, metadata=None):
    """A notebook of ``cells`` after convgrader.sanitize's preprocessor, still valid."""
    nb = new_notebook(cells=list(cells), metadata=metadata or {})
    nb, _ = SanitizeSubmission().preprocess(nb, {})
    nbformat.validate(nb)
    return nb


def formgrade_page(nb):
    """The page the formgrader serves for ``nb`` (its template), without nbconvert's sanitizing."""
    # Imported here: the formgrader's handlers take about 6 s to import (the Jupyter server
    # behind them), which only the tests that render this page pay.
    from nbgrader.server_extensions.formgrader import handlers
    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    config.HTMLExporter.sanitize_html = False
    resources = {"base_url": "", "notebook_id": "nb", "index": 0, "total": 1,
                 "submission_id": "s", "notebook_path": "nb.ipynb"}
    html, _ = HTMLExporter(config=config).from_notebook_node(nb, resources=resources)
    return html
