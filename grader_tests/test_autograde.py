"""`nbgrader autograde` gives every sample submission exactly its expected points, cell by cell.

The sample class (grader_tests/sample_class) is built from the release notebooks by filling
their graded cells; expected.toml beside each assignment's answers holds the points.
"""
import re
from html.parser import HTMLParser

import pandas as pd
import pytest
from nbgrader.api import Gradebook

from conftest import ASSIGNMENTS, COURSE_ROOT, SAMPLE_CLASS, nbgrader
from test_sanitize import active_content
from convgrader import sample_class
from convgrader.notebooks import is_test, read, points_per_test_cell

CASES = [(a, s) for a in ASSIGNMENTS for s in sample_class.students(SAMPLE_CLASS, a)]


@pytest.fixture(scope="module")
def gradebook(released_course):
    """The sample class submitted to the course copy and autograded, as its Gradebook."""
    sample_class.build(SAMPLE_CLASS, released_course / "release", released_course / "submitted")
    # One nbgrader process for every assignment (nbgrader takes a glob): one sandbox start.
    nbgrader(released_course, "autograde", "*")
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


@pytest.mark.parametrize("assignment, student", CASES)
def test_autograde_gives_the_expected_points(gradebook, assignment, student):
    expected = sample_class.expected_scores(SAMPLE_CLASS, assignment)[student]
    assert scores(gradebook, assignment, student) == pytest.approx(expected)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notes_code_full_untouched_zero_hardcoded_less(gradebook, assignment):
    full = sum(source_points(assignment).values())
    total = {s: sum(scores(gradebook, assignment, s).values())
             for s in ("notes_code", "untouched", "hardcoded")}
    assert total["notes_code"] == full
    assert total["untouched"] == 0
    assert total["hardcoded"] < full


def test_no_autograded_notebook_keeps_active_content(gradebook, released_course):
    """The formgrader shows autograded notebooks with the instructor's login: no script of
    a submission survives in them (attack_script_in_output, convgrader/sanitize.py)."""
    for notebook in (released_course / "autograded").glob("*/*/*.ipynb"):
        for cell in read(notebook).cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                assert not {"application/javascript", "image/svg+xml"} & set(data), notebook
                assert not active_content(data.get("text/html", "")), notebook


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


def test_a_flood_of_output_is_capped(gradebook, released_course):
    for notebook in (released_course / "autograded").glob("*/*/*.ipynb"):
        assert notebook.stat().st_size < 3_000_000, f"{notebook} keeps too much output"


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
    from convgrader.batch import load_config
    if setting is None:
        monkeypatch.delenv("CONVCOURSE_GRADE_FIGURES", raising=False)
    else:
        monkeypatch.setenv("CONVCOURSE_GRADE_FIGURES", setting)
    assert load_config(COURSE_ROOT).Execute.get("extra_arguments", []) == arguments


@pytest.fixture(scope="module")
def feedback(gradebook, released_course):
    """The text of every feedback HTML page of the sample class, by path."""
    nbgrader(released_course, "generate_feedback", "*")
    pages = sorted((released_course / "feedback").glob("*/*/*.html"))
    assert len(pages) == len(CASES)
    return {page: visible_text(page.read_text()) for page in pages}


def visible_text(html_page):
    """The page's text as a reader sees it, whitespace collapsed (code is split in spans)."""
    class Text(HTMLParser):
        chunks = []

        def handle_data(self, data):
            self.chunks.append(data)
    parser = Text()
    parser.chunks = []
    parser.feed(html_page)
    return " ".join(" ".join(parser.chunks).split())


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


def test_feedback_never_shows_hidden_tests(feedback):
    for page, text in feedback.items():
        assignment = page.parent.name
        for line in hidden_test_lines(assignment):
            assert line not in text, f"{page} shows the hidden test line {line!r}"


def test_feedback_says_why_a_check_failed(feedback, released_course):
    page = released_course / "feedback" / "hardcoded" / ASSIGNMENTS[0]
    text = next(iter(feedback[p] for p in feedback if p.parent == page))
    assert "has the wrong shape: expected" in text or "has the wrong values" in text
    assert "Grader's checks: passed:" in text


def test_report_counts_what_the_gradebook_holds(gradebook, released_course, tmp_path):
    from convgrader.report import write_report
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
