"""Building submissions from the release notebooks: filling, tampering, sharing answers."""
import pytest

from convgrader.notebooks import is_solution, nbgrader_meta, read
from convgrader.tools import sample_class
from course_copies import ASSIGNMENTS, COURSE_ROOT, SAMPLE_CLASS

RELEASE_01 = sample_class.notebook_path(COURSE_ROOT / "release", ASSIGNMENTS[0])


def answers(tmp_path, text, name="student.py"):
    path = tmp_path / name
    path.write_text(text)
    return sample_class.load_answers(path)


def cell(nb, grade_id):
    return next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)


def test_filling_replaces_only_the_named_solution_cell():
    nb = read(RELEASE_01)
    edits = answers_for("notes_code")
    filled = sample_class.fill(nb, edits)
    assert "zip(X, K)" in cell(filled, "corr2d_multi_in").source
    assert [c.source for c in filled.cells if not is_solution(c)] == \
        [c.source for c in nb.cells if not is_solution(c)]


def answers_for(student, assignment=ASSIGNMENTS[0]):
    return sample_class.load_answers(SAMPLE_CLASS / assignment / f"{student}.py")


def test_an_empty_answer_file_is_the_untouched_release():
    nb = read(RELEASE_01)
    assert sample_class.fill(nb, answers_for("untouched")) == nb


def test_unknown_cells_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no solution cell named 'nope'"):
        sample_class.fill(read(RELEASE_01), answers(tmp_path, "# %% nope\nx = 1\n"))
    with pytest.raises(ValueError, match="no solution cell"):
        sample_class.fill(read(RELEASE_01), answers(
            tmp_path, "# %% test_corr2d_multi_in_worked_example\nx = 1\n"))


def test_tampering_directives(tmp_path):
    edits = answers(tmp_path, "# %% edit test_corr2d_multi_in_worked_example\npass\n"
                              "# %% delete test_corr2d_multi_in_against_pytorch\n"
                              '# %% metadata corr2d_multi_in {"points": 7}\n')
    nb = sample_class.fill(read(RELEASE_01), edits)
    assert cell(nb, "test_corr2d_multi_in_worked_example").source == "pass"
    assert not any(nbgrader_meta(c).get("grade_id") == "test_corr2d_multi_in_against_pytorch"
                   for c in nb.cells)
    assert nbgrader_meta(cell(nb, "corr2d_multi_in"))["points"] == 7


def test_same_as_takes_another_students_answer(tmp_path):
    (tmp_path / "model.py").write_text("# %% f\ndef f():\n    return 1\n")
    edits = answers(tmp_path, "# %% same f as model\n")
    assert [(e.action, e.grade_id, e.body) for e in edits] == \
        [("fill", "f", "def f():\n    return 1")]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_sample_answer_file_loads_and_fills(assignment):
    nb = read(sample_class.notebook_path(COURSE_ROOT / "release", assignment))
    for student in sample_class.students(SAMPLE_CLASS, assignment):
        sample_class.fill(nb, answers_for(student, assignment))


def test_the_roster_names_every_sample_student():
    """`make collect-sample` imports grader_tests/sample_class/roster.csv (`nbgrader db
    student import`): every sample student gets a first and a last name in the formgrader."""
    import csv
    with open(SAMPLE_CLASS / "roster.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    named = {r["id"] for r in rows if r["first_name"].strip() and r["last_name"].strip()}
    everyone = {s for a in sample_class.assignments(SAMPLE_CLASS)
                for s in sample_class.students(SAMPLE_CLASS, a)}
    assert len(rows) == len({r["id"] for r in rows}), "a student is in the roster twice"
    assert everyone <= named, f"no name in roster.csv for {sorted(everyone - named)}"
