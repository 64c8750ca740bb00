"""`nbgrader autograde` gives every sample submission exactly its expected points, cell by cell.

The sample class (grader_tests/sample_class) is built from the release notebooks by filling
their graded cells; expected.toml beside each assignment's answers holds the points.
"""
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_output
from nbgrader.api import Gradebook

from browsers import start_chromium
from convgrader.notebooks import is_test, nbgrader_meta, read, points_per_test_cell
from convgrader.tools import sample_class
from course_copies import (ASSIGNMENTS, COURSE_ROOT, SAMPLE_CLASS, TEST_TIME_LIMITS, course_env,
                           nbgrader)
from page_attacks import FORMULAS, probes_outside_text
from sanitized_pages import active_content
from tiers import grading_fixture

CASES = [(a, s) for a in ASSIGNMENTS for s in sample_class.students(SAMPLE_CLASS, a)]


# Two globs that split the assignments into halves of about the same grading time (the
# first assignment has the attacks).
AUTOGRADE_LANES = ("0[1-3]_*", "0[4-9]_*")


def test_the_autograde_lanes_take_every_assignment_once():
    lanes = [fnmatch.filter(ASSIGNMENTS, glob) for glob in AUTOGRADE_LANES]
    assert sorted(sum(lanes, [])) == ASSIGNMENTS, "AUTOGRADE_LANES miss or repeat an assignment"


@grading_fixture(scope="module")
def gradebook(released_course):
    """The sample class submitted to the course copy and autograded, as its Gradebook."""
    sample_class.build(SAMPLE_CLASS, released_course / "release", released_course / "submitted")
    # The roster first, as an instructor adds the class: two autograde processes that both
    # met a new student would both insert them.
    nbgrader(released_course, "db", "student", "import", str(SAMPLE_CLASS / "roster.csv"))
    # Two `nbgrader autograde` at once on the two cores, as an instructor in two terminals,
    # each on a glob of assignments (one process, one sandbox start, per glob).
    lanes = [subprocess.Popen([sys.executable, "-m", "nbgrader", "autograde", glob],
                              cwd=released_course, env=course_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for glob in AUTOGRADE_LANES]
    outputs = [lane.communicate()[0] for lane in lanes]
    for lane, glob, output in zip(lanes, AUTOGRADE_LANES, outputs):
        assert lane.returncode == 0, f"nbgrader autograde {glob} failed:\n{output}"
    with Gradebook(f"sqlite:///{released_course / 'gradebook.db'}") as gb:
        yield gb


def source_points(assignment):
    return points_per_test_cell(read(sample_class.notebook_path(sample_class.COURSE_SOURCE, assignment)))


def scores(gradebook, assignment, student):
    notebook = sample_class.notebook_path(sample_class.COURSE_SOURCE, assignment).stem
    submission = gradebook.find_submission_notebook(notebook, assignment, student)
    return {grade.name: grade.score for grade in submission.grades}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_assignment_has_a_sample_class(assignment):
    students = sample_class.students(SAMPLE_CLASS, assignment)
    assert {"notes_code", "untouched", "hardcoded"} <= set(students)
    expected = sample_class.expected_scores(SAMPLE_CLASS, assignment)
    assert set(expected) == set(students), "expected.toml and the answer files name other students"
    for student, points in expected.items():
        assert set(points) == set(source_points(assignment)), \
            f"expected.toml: {student} does not list exactly the notebook's test cells"


@pytest.mark.grading
@pytest.mark.parametrize("assignment, student", CASES)
def test_autograde_gives_the_expected_points(gradebook, assignment, student):
    expected = sample_class.expected_scores(SAMPLE_CLASS, assignment)[student]
    assert scores(gradebook, assignment, student) == pytest.approx(expected)


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notes_code_full_untouched_zero_hardcoded_less(gradebook, assignment):
    full = sum(source_points(assignment).values())
    total = {s: sum(scores(gradebook, assignment, s).values())
             for s in ("notes_code", "untouched", "hardcoded")}
    assert total["notes_code"] == full
    assert total["untouched"] == 0
    assert total["hardcoded"] < full


@pytest.mark.grading
def test_no_autograded_notebook_keeps_active_content(gradebook, released_course):
    """The formgrader shows autograded notebooks with the instructor's login: no script of
    a submission survives in them (attack_script_in_output, convgrader/sanitize.py)."""
    for notebook in (released_course / "autograded").glob("*/*/*.ipynb"):
        for cell in read(notebook).cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                assert not {"application/javascript", "image/svg+xml"} & set(data), notebook
                assert not active_content(data.get("text/html", "")), notebook


@pytest.mark.grading
def test_test_cells_show_only_the_graders_words(gradebook, released_course):
    """Whatever a kernel prints or displays while test cells are judged never reaches them:
    a test cell's outputs are the test's own prints, the grader's list, its CheckFailed."""
    for notebook in (released_course / "autograded").glob("*/*/*.ipynb"):
        for cell in read(notebook).cells:
            if not is_test(cell):
                continue
            kinds = [(o.output_type, o.get("name") or o.get("ename")) for o in cell.outputs]
            assert set(kinds) <= {("stream", "stdout"), ("error", "CheckFailed")}, notebook
            assert "Grader's checks:" in cell.outputs[-1 - (kinds[-1][0] == "error")].text
            text = "".join(o.get("text", "") + o.get("evalue", "") for o in cell.outputs)
            assert "SEEN:" not in text and "IN:" not in text, notebook  # the leak attempts


@pytest.mark.grading
def test_a_flood_of_output_is_capped(gradebook, released_course):
    for notebook in (released_course / "autograded").glob("*/*/*.ipynb"):
        assert notebook.stat().st_size < 3_000_000, f"{notebook} keeps too much output"


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_grading_runs_the_figure_code_without_rendering_pictures(gradebook, released_course,
                                                                 assignment):
    notebook = sample_class.notebook_path(released_course / "autograded" / "notes_code",
                                          assignment)
    outputs = [o for c in read(notebook).cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if "image/png" in o.get("data", {})]
    assert [o for o in outputs if o.get("data", {}).get("text/plain", "").startswith("<Figure")]
    assert not [o for o in outputs if o.get("output_type") == "error"]


@pytest.mark.parametrize("setting, arguments", [
    (None, ["--InlineBackend.figure_formats=[]"]), ("1", [])])
def test_course_config_renders_figures_only_when_asked(monkeypatch, setting, arguments):
    from convgrader.course import load_config
    if setting is None:
        monkeypatch.delenv("CONVCOURSE_GRADE_FIGURES", raising=False)
    else:
        monkeypatch.setenv("CONVCOURSE_GRADE_FIGURES", setting)
    assert load_config(COURSE_ROOT).Execute.get("extra_arguments", []) == arguments


@grading_fixture(scope="module")
def feedback(gradebook, released_course):
    """The text of every feedback HTML page of the sample class, by path."""
    nbgrader(released_course, "generate_feedback", "*")
    pages = sorted((released_course / "feedback").glob("*/*/*.html"))
    assert len(pages) == len(CASES)
    return {page: visible_text(page.read_text()) for page in pages}


def visible_text(html_page):
    """The page's text as a reader sees it, whitespace collapsed (code is split in spans);
    not its scripts and styles."""
    class Text(HTMLParser):
        chunks, hidden = [], 0

        def handle_starttag(self, tag, attrs):
            self.hidden += tag in ("script", "style")

        def handle_endtag(self, tag):
            self.hidden -= tag in ("script", "style")

        def handle_data(self, data):
            if not self.hidden:
                self.chunks.append(data)
    parser = Text()
    parser.chunks = []
    parser.feed(html_page)
    return " ".join(" ".join(parser.chunks).split())


class Head(HTMLParser):
    """The page's script elements (their attributes), link elements and style text."""

    def __init__(self):
        super().__init__()
        self.scripts, self.links, self.css, self._in_style = [], [], [], False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts.append(dict(attrs))
        elif tag == "link":
            self.links.append(dict(attrs))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.css.append(data)


def page_head(page):
    parser = Head()
    parser.feed(page.read_text())
    return parser


def hidden_test_lines(assignment):
    """Lines of the hidden tests that appear nowhere in the release notebook."""
    source = read(sample_class.notebook_path(sample_class.COURSE_SOURCE, assignment))
    release = read(sample_class.notebook_path(COURSE_ROOT / "release", assignment))
    public = "\n".join(cell.source for cell in release.cells)
    lines = set()
    for cell in source.cells:
        for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS",
                                cell.source, re.DOTALL):
            lines |= {" ".join(line.split()) for line in block.splitlines()
                      if len(line.strip()) >= 12 and line.strip() not in public}
    return lines


@pytest.mark.grading
def test_feedback_never_shows_hidden_tests(feedback):
    for page, text in feedback.items():
        assignment = page.parent.name
        for line in hidden_test_lines(assignment):
            assert line not in text, f"{page} shows the hidden test line {line!r}"


@pytest.mark.grading
def test_feedback_says_why_a_check_failed(feedback, released_course):
    page = released_course / "feedback" / "hardcoded" / ASSIGNMENTS[0]
    text = next(iter(feedback[p] for p in feedback if p.parent == page))
    assert "has the wrong shape: expected" in text or "has the wrong values" in text
    assert "Grader's checks: passed:" in text


# A student whose function loops on non-square inputs: the check against PyTorch times out.
LOOPING = ("attack_infinite_loop", "01_multi_input_channels",
           "test_corr2d_multi_in_against_pytorch")
LIMIT = TEST_TIME_LIMITS["CONVCOURSE_CELL_TIMEOUT"]


@pytest.mark.grading
def test_a_test_cell_past_the_time_limit_says_so(feedback, released_course):
    """The looping student's function, called from a test cell: the autograded notebook and
    the feedback say the limit was reached, with no bare KeyboardInterrupt/CellTimeoutError."""
    student, assignment, test_id = LOOPING
    notebook = sample_class.notebook_path(released_course / "autograded" / student, assignment)
    (cell,) = [c for c in read(notebook).cells if nbgrader_meta(c).get("grade_id") == test_id]
    said = f"ran longer than the time limit of {LIMIT} s per test cell and was stopped."
    assert said in cell.outputs[-1].evalue
    for output in cell.outputs:
        assert output.output_type != "error" or (
            output.ename != "KeyboardInterrupt" and output.evalue.strip()), output
    text = feedback[released_course / "feedback" / student / assignment / f"{notebook.stem}.html"]
    assert re.search(r"FAILED: corr2d_multi_in\(X, K\) [^.]* " + re.escape(said), text), text
    assert "KeyboardInterrupt" not in text and "CellTimeoutError" not in text


def student_course(released_course, student, course):
    """A copy of the graded course with one student's autograded notebooks, for
    generate_feedback to write that student's pages from."""
    (course / "autograded").mkdir(parents=True)
    for name in ("nbgrader_config.py", "gradebook.db"):
        shutil.copy(released_course / name, course)
    shutil.copytree(released_course / "autograded" / student, course / "autograded" / student)
    return course


@pytest.mark.grading
def test_feedback_explains_a_test_cell_that_ran_past_the_time_limit_in_the_kernel(
        gradebook, released_course, tmp_path):
    """Before test cells were judged in the grader they ran in the kernel, and one stopped by
    the time limit kept nbclient's errors, which have no message: the feedback of such a
    notebook (graded then) says what happened instead."""
    student, assignment, test_id = LOOPING
    course = student_course(released_course, student, tmp_path / "course")
    notebook = sample_class.notebook_path(course / "autograded" / student, assignment)
    nb = read(notebook)
    (cell,) = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") == test_id]
    cell.outputs = [  # what nbclient and nbgrader's Execute wrote
        new_output("error", ename="KeyboardInterrupt", evalue="", traceback=[
            "KeyboardInterrupt  Traceback (most recent call last)", "KeyboardInterrupt: "]),
        new_output("error", ename="CellTimeoutError", evalue="", traceback=[
            "CellTimeoutError: No reply from kernel before timeout"])]
    notebook.chmod(0o644)
    nbformat.write(nb, str(notebook))
    nbgrader(course, "generate_feedback", assignment, "--student", student)
    page = course / "feedback" / student / assignment / f"{notebook.stem}.html"
    text = visible_text(page.read_text())
    assert f"CellTimeoutError: This test cell ran longer than the time limit of {LIMIT} s " \
           "and was stopped." in text
    assert "KeyboardInterrupt" not in text
    assert not re.search(r"CellTimeoutError: (?!This test cell ran longer)", text), text


@pytest.mark.grading
def test_feedback_pages_load_nothing_from_the_network(feedback):
    """Students open feedback offline: the page has no script at all (its formulas are
    MathML, convgrader/mathml.py), and no stylesheet, font or image with an address."""
    for page in feedback:
        head = page_head(page)
        html = page.read_text()
        assert head.scripts == [] and "<script" not in html, page
        assert [link for link in head.links if link.get("rel") == "stylesheet"] == [], page
        assert "url(" not in "".join(head.css) and "cdnjs" not in html, page
        assert "<math" in html, page


# MathJax inside made each page 2.2 MB (2,374 KB the largest, 270 MB the sample class).
# Without it, two thirds of a page were Bootstrap's CSS: a page keeps the rules it can use
# (head 12 KB); and a third of the largest pages' content (06 and 08) were spans around
# code's names and punctuation, which the style does not colour: gone.
MAX_PAGE_BYTES = 150_000
MAX_HEAD_BYTES = 20_000


@pytest.mark.grading
def test_feedback_pages_are_small(feedback):
    sizes = {page: page.stat().st_size for page in feedback}
    for page, size in sizes.items():
        head = page.read_bytes().partition(b"</head>")[0]
        assert size < MAX_PAGE_BYTES and len(head) < MAX_HEAD_BYTES, (page, size, len(head))
    print(f"feedback pages: {len(sizes)}, largest {max(sizes.values()) / 1000:.0f} KB, "
          f"all {sum(sizes.values()) / 1e6:.1f} MB")


@pytest.mark.grading
def test_a_students_formulas_in_feedback_bring_no_markup(gradebook, released_course, tmp_path):
    """A markdown cell of formulas that try to run script, broken and huge ones too, in a
    notebook generate_feedback makes a page of: the page is made, the formulas that can be
    are MathML, the others text."""
    student, assignment, _ = LOOPING
    course = student_course(released_course, student, tmp_path / "course")
    notebook = sample_class.notebook_path(course / "autograded" / student, assignment)
    nb = read(notebook)
    nb.cells.append(nbformat.v4.new_markdown_cell(
        "Formulas:\n\n" + "\n\n".join(FORMULAS.values()) + "\n\nAfter: $x^2$."))
    notebook.chmod(0o644)
    nbformat.write(nb, str(notebook))
    nbgrader(course, "generate_feedback", assignment, "--student", student)
    html = (course / "feedback" / student / assignment / f"{notebook.stem}.html").read_text()
    assert probes_outside_text(html) == [] and "<script" not in html
    assert "After: <math><msup><mi>x</mi><mn>2</mn></msup></math>." in html
    assert "ran longer than the time limit" in visible_text(html)


def css_rules(css):
    """[(selectors, {property: value})] of a stylesheet (no nesting; comments removed)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    rules = []
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        declarations = dict(d.split(":", 1) for d in body.split(";") if ":" in d)
        rules.append(({" ".join(s.split()) for s in selectors.split(",")},
                      {k.strip(): v.strip() for k, v in declarations.items()}))
    return rules


@pytest.mark.grading
def test_feedback_pages_wrap_long_output_lines(feedback):
    """Bootstrap's pre scrolls long lines sideways: text outputs wrap instead."""
    for page in feedback:
        rules = css_rules("\n".join(page_head(page).css))
        wrapping = [d for selectors, d in rules if "div.output_area pre" in selectors
                    and d.get("white-space") == "pre-wrap"]
        assert wrapping and wrapping[-1].get("overflow-wrap") == "anywhere", page


# Where the formulas' parts are on the page: a fraction's numerator above its denominator, a
# subscript lower than its base, a superscript higher.
MATH_LAYOUT = """
const box = e => e.getBoundingClientRect();
const all = [...document.querySelectorAll('math')];
return {
  math: all.length,
  mathml: all.filter(m => m.namespaceURI === 'http://www.w3.org/1998/Math/MathML').length,
  shown: all.filter(m => box(m).width > 1 && box(m).height > 1).length,
  block: document.querySelectorAll('math[display=block]').length,
  fractions: [...document.querySelectorAll('mfrac')]
    .map(f => box(f.children[0]).bottom <= box(f.children[1]).top + 1),
  subscripts: [...document.querySelectorAll('msub')]
    .map(s => box(s.children[1]).top > box(s.children[0]).top),
  superscripts: [...document.querySelectorAll('msup')]
    .map(s => box(s.children[1]).bottom < box(s.children[0]).bottom),
};
"""


@pytest.mark.grading
def test_feedback_renders_math_and_wraps_lines_offline(chromium, feedback, released_course,
                                                       tmp_path):
    """In Chromium with every host unresolvable, a feedback page opened from disk shows its
    formulas laid out as formulas (MathML, no script) and its long lines whole, within their
    boxes."""
    from selenium.webdriver.common.by import By

    student, assignment, _ = LOOPING
    (page,) = (released_course / "feedback" / student / assignment).glob("*.html")
    notes_page = released_course / "feedback" / "notes_code" / "07_learning_a_kernel"
    (notes,) = notes_page.glob("*.html")
    shots = os.environ.get("CONVCOURSE_BROWSER_SCREENSHOTS")
    driver = start_chromium(tmp_path)
    try:
        driver.get(page.as_uri())
        body = driver.find_element(By.TAG_NAME, "body").text
        overflowing = driver.execute_script(
            "return [...document.querySelectorAll('div.output_area pre')]"
            ".filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.textContent)")
        assert overflowing == []
        assert "ran longer than the time limit" in body
        if shots:
            driver.save_screenshot(os.path.join(shots, "feedback-offline.png"))
        for html in page, notes:
            driver.get(html.as_uri())
            layout = driver.execute_script(MATH_LAYOUT)
            assert layout["math"] > 20 and layout["mathml"] == layout["shown"] == layout["math"]
            for part in "fractions", "subscripts", "superscripts":
                assert all(layout[part]), (html, part, layout[part])
            raw = driver.execute_script(  # markdown text still holding a formula's $...$
                "return [...document.querySelectorAll('.text_cell_render')]"
                ".map(e => e.innerText).filter(t => /\\$[^$]+\\$/.test(t))")
            assert raw == [], html
        assert layout["block"] and layout["fractions"] and layout["subscripts"]
        if shots:
            driver.execute_script("document.querySelector('mfrac').scrollIntoView("
                                  "{block: 'center'})")
            driver.save_screenshot(os.path.join(shots, "feedback-formulas.png"))
    finally:
        driver.quit()


@pytest.mark.grading
def test_feedback_pages_look_the_same_with_only_the_css_they_use(chromium, feedback,
                                                                  released_course, tmp_path):
    """The largest page, as generate_feedback writes it and with all of its template's CSS
    (FeedbackExporter.prune_css off): the same pixels in Chromium, from top to bottom."""
    from PIL import Image, ImageChops

    student, assignment = "untouched", "06_conv2d_in_full"
    course = student_course(released_course, student, tmp_path / "course")
    nbgrader(course, "generate_feedback", assignment, "--student", student,
             "--FeedbackExporter.prune_css=False")
    (full,) = (course / "feedback" / student / assignment).glob("*.html")
    (pruned,) = (released_course / "feedback" / student / assignment).glob("*.html")
    assert full.read_text().partition("</head>")[2] == pruned.read_text().partition("</head>")[2]
    assert pruned.stat().st_size < full.stat().st_size - 100_000
    driver = start_chromium(tmp_path)
    shots = []
    try:
        for page in full, pruned:
            driver.set_window_size(1280, 1400)
            driver.get(page.as_uri())
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1280, height + 200)
            time.sleep(0.5)
            shot = tmp_path / f"{len(shots)}.png"
            driver.save_screenshot(str(shot))
            shots.append((height, Image.open(shot).convert("RGB")))
    finally:
        driver.quit()
    (height_full, image_full), (height_pruned, image_pruned) = shots
    assert height_full == height_pruned > 5_000
    assert ImageChops.difference(image_full, image_pruned).getbbox() is None


@pytest.mark.grading
def test_report_counts_what_the_gradebook_holds(gradebook, released_course, tmp_path):
    from convgrader.tools.class_report import write_report
    png, scores_csv, cells_csv = write_report(
        f"sqlite:///{released_course / 'gradebook.db'}", tmp_path)
    assert png.stat().st_size > 10_000
    cells = {(row.assignment, row.test_cell): row
             for row in pd.read_csv(cells_csv).itertuples()}
    for assignment in ASSIGNMENTS:
        expected = sample_class.expected_scores(SAMPLE_CLASS, assignment)
        for test_cell, max_points in source_points(assignment).items():
            row = cells[(assignment, test_cell)]
            assert row.submissions == len(expected)
            assert row.failed == sum(points[test_cell] < max_points
                                     for points in expected.values())
    scores = pd.read_csv(scores_csv)
    assert len(scores) == len(CASES)
