"""`nbgrader autograde` gives every sample submission exactly its expected points, cell by cell.

The sample class (grader_tests/sample_class) is built from the release notebooks by filling
their graded cells; expected.toml beside each assignment's answers holds the points.
"""
import pytest
from nbgrader.api import Gradebook

from conftest import ASSIGNMENTS, SAMPLE_CLASS, nbgrader
from convcourse import sample_class
from convcourse.notebooks import read, points_per_test_cell

CASES = [(a, s) for a in ASSIGNMENTS for s in sample_class.students(SAMPLE_CLASS, a)]


@pytest.fixture(scope="module")
def gradebook(released_course):
    """The sample class submitted to the course copy and autograded, as its Gradebook."""
    sample_class.build(SAMPLE_CLASS, released_course / "release", released_course / "submitted")
    for assignment in ASSIGNMENTS:
        nbgrader(released_course, "autograde", assignment)
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
