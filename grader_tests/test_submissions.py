"""Submission folders and notebooks checked before nbgrader copies or reads them
(convgrader/submissions.py), and feedback that clears only the gradebook's hidden tests
(convgrader/feedback.py).

Unit tests check each kind of bad file or folder and each malformed notebook, with its exact
one-line reason. Two grading runs, each once per module, grade a small class (three honest
sample students and one whose answer holds a hidden-tests marker) together with every bad
submission: one `nbgrader autograde` with the course's config, one batch run.
"""
import copy
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.converters import Autograde
from nbgrader.converters.base import BaseConverter
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests

from convgrader.course import submissions
from convgrader.feedback import ClearKnownHiddenTests
from convgrader.notebooks import nbgrader_meta
from convgrader.submissions import (
    CheckedAutograde, NotebookCells, SubmissionLimits, SubmissionRefused, check_folder,
    check_notebook, open_submission, read_notebook, walk)
from convgrader.submissions.autograde import _CheckedReads
from convgrader.tools import sample_class
from course_copies import COURSE_ROOT, SAMPLE_CLASS, copy_course, nbgrader, run_in
from tiers import grading_fixture

A = "01_multi_input_channels"
NB = f"{A}.ipynb"
RELEASE = COURSE_ROOT / "release" / A / NB
HONEST = ["hardcoded", "notes_code", "untouched"]
TEST_ID = "test_corr2d_multi_in_worked_example"
ONE_LINE = "a submission may hold only regular files and folders"
AGAIN = "start again from the release notebook"


def release():
    return json.loads(RELEASE.read_text())


def cell_number(nb, grade_id):
    """The 1-based number of the cell ``grade_id``, as the reasons count cells."""
    return next(i for i, c in enumerate(nb["cells"], 1)
                if nbgrader_meta(c).get("grade_id") == grade_id)


def release_cells():
    """What the gradebook records of the notebook, read from the release notebook."""
    cells = [nbgrader_meta(c) for c in release()["cells"] if nbgrader_meta(c)]
    return {A: NotebookCells(A, [m["grade_id"] for m in cells],
                             [m["grade_id"] for m in cells if m.get("grade")],
                             [m["grade_id"] for m in cells if m.get("solution")])}


# --- Bad submissions: each builds one in submitted/<student>/ and returns its reason ----

def _folder(submitted, student, notebook=True):
    folder = submitted / student / A
    folder.mkdir(parents=True)
    if notebook:
        (folder / NB).write_text(json.dumps(release()))
    return folder


def _notebook(submitted, student, nb=None, text=None, name=NB):
    folder = _folder(submitted, student, notebook=False)
    (folder / name).write_text(text if text is not None else json.dumps(nb))


def link_to_gradebook(submitted, student):
    os.symlink("../../../gradebook.db", _folder(submitted, student) / "gradebook.db")
    return f"gradebook.db is a symbolic link to ../../../gradebook.db: {ONE_LINE}"


def notebook_linked_to_source(submitted, student):
    target = f"../../../source/{A}/{NB}"
    os.symlink(target, _folder(submitted, student, notebook=False) / NB)
    return f"{NB} is a symbolic link to {target}: {ONE_LINE}"


def linked_folder_deep_inside(submitted, student):
    deep = _folder(submitted, student) / "data" / "more"
    deep.mkdir(parents=True)
    os.symlink("../../../../../source", deep / "src")
    return f"data/more/src is a symbolic link to ../../../../../source: {ONE_LINE}"


def linked_assignment_folder(submitted, student):
    (submitted / student).mkdir(parents=True)
    os.symlink(f"../../source/{A}", submitted / student / A)
    return f"submitted/{student}/{A} is a symbolic link to ../../source/{A}: {ONE_LINE}"


def linked_student_folder(submitted, student):
    os.symlink("../source", submitted / student)
    return f"submitted/{student} is a symbolic link to ../source: {ONE_LINE}"


def named_pipe(submitted, student):
    os.mkfifo(_folder(submitted, student) / "pipe")
    return f"pipe is a named pipe (FIFO): {ONE_LINE}"


def oversized_folder(submitted, student):
    with open(_folder(submitted, student) / "data.bin", "wb") as f:
        f.truncate(60 * 2 ** 20)  # sparse: 60 MiB long, no disk used
    return "the folder holds more than 50.0 MiB (stopped at data.bin)"


def huge_notebook(submitted, student):
    folder = _folder(submitted, student, notebook=False)
    with open(folder / NB, "wb") as f:
        f.truncate(21 * 2 ** 20)
    return f"{NB} is over 20.0 MiB: a notebook may be at most 20.0 MiB"


def renamed_notebook(submitted, student):
    _notebook(submitted, student, release(), name="01_copy.ipynb")
    return f"{NB} is missing (found 01_copy.ipynb): keep the notebook's name"


def no_cells(submitted, student):
    _notebook(submitted, student, {**release(), "cells": []})
    return f"{NB} has no cells: {AGAIN}"


def duplicated_test_cell(submitted, student):
    nb = release()
    number = cell_number(nb, TEST_ID)
    twin = copy.deepcopy(nb["cells"][number - 1])
    twin["id"] = "twin"
    nb["cells"].insert(number, twin)
    _notebook(submitted, student, nb)
    return f"{NB}: cells {number} and {number + 1} are both {TEST_ID}: delete the copy"


def invalid_json(submitted, student):
    _notebook(submitted, student, text='{"cells": [')
    return (f"{NB} is not valid JSON (Expecting value at line 1, column 12): it is not a "
            "Jupyter notebook, or was cut short")


def not_a_dict(submitted, student):
    _notebook(submitted, student, [release()])
    return f"{NB} is not a notebook: its JSON is a list, not an object"


def cell_without_metadata(submitted, student):
    nb = release()
    del nb["cells"][1]["metadata"]
    _notebook(submitted, student, nb)
    return f"{NB}: cell 2 ({nb['cells'][1]['cell_type']}) has no metadata"


def notebook_format_3(submitted, student):
    _notebook(submitted, student, {**release(), "nbformat": 3})
    return f"{NB} is in notebook format 3, not 4: {AGAIN}"


def schema_version_99(submitted, student):
    nb = release()
    number = cell_number(nb, TEST_ID)
    nbgrader_meta(nb["cells"][number - 1])["schema_version"] = 99
    _notebook(submitted, student, nb)
    return (f"{NB}: cell {number} ({TEST_ID}) has nbgrader metadata of schema version 99, "
            f"not 3: its metadata was edited; {AGAIN}")


# The bad submissions graded with the honest ones. The schema-version one sorts first: it
# used to stop nbgrader for every later student.
BAD = {"a_schema_version_99": schema_version_99, "link_to_gradebook": link_to_gradebook,
       "notebook_linked_to_source": notebook_linked_to_source,
       "linked_folder_deep_inside": linked_folder_deep_inside,
       "linked_assignment_folder": linked_assignment_folder,
       "linked_student_folder": linked_student_folder, "named_pipe": named_pipe,
       "oversized_folder": oversized_folder, "huge_notebook": huge_notebook,
       "renamed_notebook": renamed_notebook, "no_cells": no_cells,
       "duplicated_test_cell": duplicated_test_cell, "invalid_json": invalid_json,
       "not_a_dict": not_a_dict, "cell_without_metadata": cell_without_metadata,
       "notebook_format_3": notebook_format_3}


def refuse(submitted, student, limits=None, notebooks="release"):
    """The reason ``check_folder`` refuses the submission with (failing if it accepts it)."""
    with pytest.raises(SubmissionRefused) as refused:
        check_folder(submitted, student, A, limits or SubmissionLimits(),
                     release_cells() if notebooks == "release" else notebooks)
    return str(refused.value)


@pytest.fixture
def submitted(tmp_path):
    (tmp_path / "submitted").mkdir()
    return tmp_path / "submitted"


# --- Unit tests: folders ----------------------------------------------------------------

@pytest.mark.parametrize("make", BAD.values(), ids=BAD.keys())
def test_each_bad_submission_is_refused_with_its_reason(submitted, make):
    reason = make(submitted, "alice")
    assert refuse(submitted, "alice") == reason


def test_an_honest_folder_passes_with_its_notebook(submitted):
    folder = _folder(submitted, "alice")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / f"{A}-checkpoint.ipynb").write_text("{}")
    (folder / "notes.txt").write_text("my notes")
    (folder / "timestamp.txt").write_text("2026-01-01 00:00:00 UTC")
    parsed = check_folder(submitted, "alice", A, SubmissionLimits(), release_cells())
    assert list(parsed) == [NB] and len(parsed[NB].cells) == len(release()["cells"])


def test_a_link_to_dev_zero_is_refused_without_reading_it(submitted):
    os.symlink("/dev/zero", _folder(submitted, "alice") / "zeros.bin")
    assert refuse(submitted, "alice") == f"zeros.bin is a symbolic link to /dev/zero: {ONE_LINE}"


def test_a_dangling_link_and_a_link_to_a_link_are_refused(submitted):
    folder = _folder(submitted, "alice")
    os.symlink("nowhere", folder / "a_dangling")
    os.symlink("a_dangling", folder / "b_chained")
    assert refuse(submitted, "alice") == f"a_dangling is a symbolic link to nowhere: {ONE_LINE}"


def test_a_socket_is_refused(submitted, monkeypatch):
    monkeypatch.chdir(_folder(submitted, "alice"))  # a socket's path has 107 bytes at most
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("sock")
        assert refuse(submitted, "alice") == f"sock is a socket: {ONE_LINE}"


def test_a_device_is_refused(submitted):
    folder = _folder(submitted, "alice")
    try:
        os.mknod(folder / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating a device needs root")
    assert refuse(submitted, "alice") == f"zero is a character device: {ONE_LINE}"


def test_a_student_entry_that_is_no_folder_is_refused(submitted):
    os.mkfifo(submitted / "bob")
    assert refuse(submitted, "bob") == "submitted/bob is a named pipe (FIFO), not a folder"
    (submitted / "carol").mkdir()
    (submitted / "carol" / A).write_text("a file")
    assert refuse(submitted, "carol") == f"submitted/carol/{A} is a file, not a folder"


def test_too_many_files_and_too_deep_folders_are_refused(submitted):
    folder = _folder(submitted, "alice")
    for i in range(10):
        (folder / f"f{i}.txt").write_text("x")
    limits = SubmissionLimits(max_entries=5)
    assert refuse(submitted, "alice", limits) == \
        "the folder holds more than 5 files and folders (in .)"
    shutil.rmtree(folder)
    deep = _folder(submitted, "alice") / "a" / "b" / "c" / "d" / "e" / "f"
    deep.mkdir(parents=True)
    assert refuse(submitted, "alice") == "a/b/c/d/e/f is nested 6 folders deep (5 allowed)"


def test_a_name_with_a_newline_is_shown_on_one_line(submitted):
    os.symlink("x\ny", _folder(submitted, "alice") / "evil\nname")
    assert refuse(submitted, "alice") == f"evil\\nname is a symbolic link to x\\ny: {ONE_LINE}"


def test_a_folder_without_a_notebook_says_so(submitted):
    (_folder(submitted, "alice", notebook=False) / "notes.txt").write_text("x")
    assert refuse(submitted, "alice") == f"{NB} is missing: the folder has no notebook"


# --- Unit tests: notebooks --------------------------------------------------------------

def refuse_notebook(nb=None, data=None, cells="release"):
    with pytest.raises(SubmissionRefused) as refused:
        check_notebook(data if data is not None else json.dumps(nb).encode(), NB,
                       release_cells()[A] if cells == "release" else cells)
    return str(refused.value)


def test_the_release_notebook_passes():
    assert len(check_notebook(RELEASE.read_bytes(), NB, release_cells()[A]).cells) > 0


@pytest.mark.parametrize("data, reason", [
    (b"", "is not valid JSON (Expecting value at line 1, column 1): it is not a Jupyter "
          "notebook, or was cut short"),
    ("{\"a\": \"\xe9\"}".encode("latin-1"), "is not UTF-8 text (byte 7): it is not a "
                                           "Jupyter notebook"),
    (b"[" * 100_000 + b"]" * 100_000, "is not a notebook: its JSON is nested too deeply"),
    (b'"a string"', "is not a notebook: its JSON is a string, not an object"),
    (b'{"cells": []}', "has no nbformat version: it is not a Jupyter notebook"),
], ids=["empty", "latin-1", "nested", "a-string", "no-nbformat"])
def test_a_file_that_is_no_notebook_says_what_it_is(data, reason):
    assert refuse_notebook(data=data) == f"{NB} {reason}"


@pytest.mark.parametrize("edit, reason", [
    (lambda nb: nb.update(nbformat=5), f"{NB} is in notebook format 5, not 4: {AGAIN}"),
    (lambda nb: nb.pop("metadata"), f"{NB} has no metadata: it is not a valid notebook"),
    (lambda nb: nb.update(cells={}), f"{NB} has no list of cells: it is not a valid notebook"),
    (lambda nb: nb["cells"].__setitem__(0, "text"), f"{NB}: cell 1 is a string, not an object"),
    (lambda nb: nb["cells"][0].update(cell_type="picture"),
     f"{NB}: cell 1 has cell_type 'picture', not code, markdown or raw"),
    (lambda nb: nb["cells"][1].pop("outputs"), f"{NB}: cell 2 (code) has no outputs"),
    (lambda nb: nb["cells"][1].update(source=5),
     f"{NB} is not a valid notebook: cell 2.source: 5 is not of type 'string'"),
    (lambda nb: nb["cells"][1].update(outputs=[{"output_type": "stream"}]),
     f"{NB} is not a valid notebook: cell 2.outputs.0: 'name' is a required property"),
    (lambda nb: nb["cells"][1]["metadata"].update(nbgrader={}),
     f"{NB}: cell 2 has nbgrader metadata of no schema version, not 3: its metadata was "
     f"edited; {AGAIN}"),
    (lambda nb: nb["cells"][1]["metadata"].update(nbgrader=["x"]),
     f"{NB}: cell 2's nbgrader metadata is a list, not an object"),
    (lambda nb: nb["cells"][1]["metadata"].update(nbgrader={"schema_version": 3, "grade": True}),
     f"{NB}: cell 2 is an nbgrader cell without a grade_id: its metadata was edited"),
], ids=["format-5", "no-metadata", "cells-not-a-list", "cell-not-an-object", "bad-cell-type",
        "no-outputs", "source-a-number", "bad-output", "empty-nbgrader-metadata",
        "nbgrader-metadata-a-list", "graded-cell-without-grade-id"])
def test_a_malformed_notebook_says_what_is_wrong(edit, reason):
    nb = release()
    edit(nb)
    assert refuse_notebook(nb) == reason


def test_an_answer_deleted_with_the_test_after_it_is_named():
    """nbgrader puts a deleted test back after the cell before it, and fails with a
    KeyError when that cell (the answer) is gone too."""
    nb = release()
    nb["cells"] = [c for c in nb["cells"] if nbgrader_meta(c).get("grade_id") not in
                   ("corr2d_multi_in", TEST_ID)]
    assert refuse_notebook(nb) == (
        f"{NB} has lost the cell corr2d_multi_in and the test cell {TEST_ID} after it: the "
        f"grader cannot put the test back; {AGAIN}")


def test_what_nbgrader_grades_is_not_refused():
    """Deleted tests (put back), an answer cell deleted with its code written elsewhere,
    keys the schema does not know, and a notebook format 4.4 all still get graded."""
    nb = release()
    nb["cells"] = [c for c in nb["cells"] if not nbgrader_meta(c).get("grade")]
    check_notebook(json.dumps(nb).encode(), NB, release_cells()[A])
    nb = release()
    nb["cells"] = [c for c in nb["cells"] if nbgrader_meta(c).get("grade_id") != "corr2d_multi_in"]
    nb["cells"][1]["extra"] = True
    nb["nbformat_minor"] = 4
    check_notebook(json.dumps(nb).encode(), NB, release_cells()[A])


# --- Unit tests: reads that a change of the folder cannot fool ---------------------------

def test_a_notebook_swapped_for_a_link_after_the_check_is_refused_when_read(submitted, tmp_path):
    _folder(submitted, "alice")
    check_folder(submitted, "alice", A, SubmissionLimits(), release_cells())
    fd = open_submission(submitted, "alice", A)
    try:
        notebook = submitted / "alice" / A / NB
        notebook.unlink()
        os.symlink(f"../../../source/{A}/{NB}", notebook)
        with pytest.raises(SubmissionRefused, match=f"{NB} is a symbolic link"):
            read_notebook(fd, NB, SubmissionLimits(), release_cells())
    finally:
        os.close(fd)


def test_a_folder_swapped_for_a_link_is_never_followed(submitted, tmp_path):
    """Once open, the folder is read through its descriptor: swapping it for a link to
    source/ changes nothing read; opening it again refuses the link."""
    _folder(submitted, "alice")
    elsewhere = tmp_path / "source" / A
    elsewhere.mkdir(parents=True)
    (elsewhere / NB).write_text("the solution")
    fd = open_submission(submitted, "alice", A)
    try:
        (submitted / "alice" / A).rename(tmp_path / "moved")
        os.symlink(elsewhere, submitted / "alice" / A)
        nb = read_notebook(fd, NB, SubmissionLimits(), release_cells())
        assert nb.cells[0].source == "".join(release()["cells"][0]["source"])
    finally:
        os.close(fd)
    with pytest.raises(SubmissionRefused, match=f"submitted/alice/{A} is a symbolic link"):
        open_submission(submitted, "alice", A)


def test_a_copy_refuses_a_link_or_pipe_swapped_in_after_the_check(submitted):
    folder = _folder(submitted, "alice")
    (folder / "data.txt").write_text("x")
    check_folder(submitted, "alice", A, SubmissionLimits(), release_cells())
    (folder / "data.txt").unlink()
    os.mkfifo(folder / "data.txt")
    fd = open_submission(submitted, "alice", A)
    try:
        with pytest.raises(SubmissionRefused, match="data.txt is a named pipe"):
            walk(fd, SubmissionLimits(), ["*.ipynb"])
    finally:
        os.close(fd)


def test_the_checked_copy_copies_what_nbgrader_copies(tmp_path):
    """CheckedAutograde's copy of a submission's other files, against nbgrader's own."""
    course = tmp_path / "course"
    folder = _folder(course / "submitted", "alice")
    for name in ["notes.txt", "sub/data.csv", "sub/deeper/x.py", ".hidden", "a.pyc",
                 "__pycache__/m.pyc", ".ipynb_checkpoints/x-checkpoint.ipynb", "sub/n.ipynb"]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(name)
    (folder / "notes.txt").chmod(0o640)
    ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

    def copied(converter_class, copier, name):
        coursedir = CourseDirectory(root=str(course), autograded_directory=name, ignore=ignore)
        copier(converter_class(coursedir=coursedir), A, "alice")
        graded = course / name / "alice" / A
        return {str(p.relative_to(graded)): (p.read_text(), stat.S_IMODE(p.stat().st_mode))
                for p in graded.rglob("*") if p.is_file()}

    stock = copied(Autograde, BaseConverter.init_assignment, "stock")
    assert stock == copied(CheckedAutograde, _CheckedReads.init_assignment, "checked")
    assert "notes.txt" in stock and "sub/deeper/x.py" in stock and "a.pyc" not in stock


def test_files_a_browser_would_run_are_not_copied_for_the_formgrader(tmp_path, caplog):
    """The formgrader serves a graded folder's files with the instructor's login, typed by
    their names: pages, SVG and XML are not copied there; text, data and images are."""
    course = tmp_path / "course"
    folder = _folder(course / "submitted", "alice")
    active = ["page.html", "page.HTM", "sub/drawing.svg", "x.xhtml", "feed.xml", "doc.pdf",
              "app.js", "style.css"]
    passive = ["notes.txt", "table.csv", "data.json", "tensor.pt", "arr.npy", "fig.png",
               "photo.jpg", "README.md", "helper.py", "archive.html.gz", "no_suffix"]
    for name in active + passive:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("<script>alert(1)</script>")
    coursedir = CourseDirectory(root=str(course), ignore=[])
    converter = CheckedAutograde(coursedir=coursedir)
    with caplog.at_level("WARNING"):
        _CheckedReads.init_assignment(converter, A, "alice")
    graded = course / "autograded" / "alice" / A
    assert sorted(str(p.relative_to(graded)) for p in graded.rglob("*") if p.is_file()) == \
        sorted(passive)
    for name in active:
        assert f"alice/{A}: {name} is not copied into the graded folder" in caplog.text


# --- Feedback ---------------------------------------------------------------------------

def test_feedback_clears_hidden_tests_only_in_the_gradebooks_test_cells(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(db_url) as gb:
        gb.add_assignment(A)
        gb.add_notebook(A, A)
        gb.add_solution_cell("answer", A, A)
        gb.add_grade_cell("test", A, A, max_score=1, cell_type="code")

    def cell(grade_id, source, grade):
        return nbformat.v4.new_code_cell(source, metadata={"nbgrader": {
            "grade_id": grade_id, "grade": grade, "solution": not grade, "locked": grade,
            "schema_version": 3}})

    answer = "def f():\n    ### BEGIN HIDDEN TESTS\n    return 1"
    test = "assert f() == 1\n### BEGIN HIDDEN TESTS\nassert f() != 2\n### END HIDDEN TESTS"
    nb = nbformat.v4.new_notebook(cells=[cell("answer", answer, False),
                                         cell("test", test, True)])
    resources = {"nbgrader": {"db_url": db_url, "assignment": A, "notebook": A}}
    with pytest.raises(RuntimeError, match="No end hidden tests statement found"):
        ClearHiddenTests().preprocess(copy.deepcopy(nb), dict(resources))
    cleared, _ = ClearKnownHiddenTests().preprocess(nb, resources)
    assert [c.source for c in cleared.cells] == [answer, "assert f() == 1"]


# --- Grading runs ------------------------------------------------------------------------

MARKER_ANSWER = """\
# %% corr2d_multi_in
def corr2d_multi_in(X, K):
    ### BEGIN HIDDEN TESTS (a student's comment, with no END)
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))
"""


def small_class(course):
    """Release assignment 01 in ``course``, submit the honest students, a student whose
    answer holds a hidden-tests marker (graded as notes_code), and every bad submission;
    {student: reason} of the bad ones."""
    nbgrader(course, "generate_assignment", A)
    class_dir = course.parent / "class" / A
    class_dir.mkdir(parents=True)
    for student in HONEST:
        shutil.copy(SAMPLE_CLASS / A / f"{student}.py", class_dir)
    (class_dir / "hidden_marker.py").write_text(MARKER_ANSWER)
    sample_class.build(class_dir.parent, course / "release", course / "submitted")
    return {student: make(course / "submitted", student) for student, make in BAD.items()}


def expected_points():
    expected = sample_class.expected_scores(SAMPLE_CLASS, A)
    points = {student: expected[student] for student in HONEST}
    points["hidden_marker"] = expected["notes_code"]
    return points


def gradebook_points(course):
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student.id: {g.name: g.score for g in s.notebooks[0].grades}
                for s in gb.find_assignment(A).submissions}


def nothing_of(course, students, folder):
    return [p for s in students for p in (course / folder).glob(f"{s}/**/*")]


@grading_fixture(scope="module")
def autograde_run(tmp_path_factory):
    """`nbgrader autograde` of the small class with the course's config, then feedback."""
    course = copy_course(tmp_path_factory.mktemp("refusing") / "course")
    bad = small_class(course)
    graded = run_in(course, sys.executable, "-m", "nbgrader", "autograde", A, "--force",
                    check=False)
    feedback = run_in(course, sys.executable, "-m", "nbgrader", "generate_feedback", A,
                      "--force", check=False)
    return course, bad, graded, feedback


@pytest.mark.grading
def test_autograde_refuses_each_bad_submission_in_one_line(autograde_run):
    _, bad, graded, _ = autograde_run
    assert graded.returncode == 1
    log = graded.stdout + graded.stderr
    for student, reason in bad.items():
        assert f"[AutogradeApp | ERROR] {student}/{A}: {reason}\n" in log


@pytest.mark.grading
def test_autograde_grades_every_other_student_exactly(autograde_run):
    course, _, _, _ = autograde_run
    assert gradebook_points(course) == expected_points()


@pytest.mark.grading
def test_nothing_of_a_refused_submission_reaches_autograded_or_feedback(autograde_run):
    course, bad, _, feedback = autograde_run
    assert feedback.returncode == 0, feedback.stdout + feedback.stderr
    assert nothing_of(course, bad, "autograded") == []
    assert nothing_of(course, bad, "feedback") == []
    assert sorted(p.name for p in (course / "feedback").iterdir()) == sorted(expected_points())
    assert not list((course / "autograded").rglob("gradebook.db"))


@pytest.mark.grading
def test_feedback_keeps_a_students_hidden_tests_marker_and_hides_the_real_ones(autograde_run):
    course, _, _, _ = autograde_run
    page = (course / "feedback" / "hidden_marker" / A / f"{A}.html").read_text()
    assert "BEGIN HIDDEN TESTS (a student&#39;s comment" in page or \
        "BEGIN HIDDEN TESTS (a student's comment" in page
    source = (COURSE_ROOT / "source" / A / NB).read_text()
    assert "### END HIDDEN TESTS" in source and "END HIDDEN TESTS" not in page


@pytest.mark.grading
def test_make_feedback_goes_on_after_a_student_it_cannot_serve_and_fails_at_the_end(
        autograde_run, tmp_path):
    """`make feedback` is one `nbgrader generate_feedback "*"`: a student whose autograded
    notebook cannot be read is named, every other student gets their page, and the exit
    status says that one failed."""
    course = shutil.copytree(autograde_run[0], tmp_path / "course", symlinks=True,
                             ignore=shutil.ignore_patterns("submitted"))  # pipes, links, ...
    shutil.rmtree(course / "feedback")
    broken = course / "autograded" / "notes_code" / A / NB
    broken.chmod(0o644)
    broken.write_text("{ not a notebook")
    result = subprocess.run(["make", "-s", "-f", str(COURSE_ROOT / "Makefile"), "-o", "install",
                             "feedback", f"BIN={Path(sys.executable).parent}"],
                            cwd=course, capture_output=True, text=True)
    assert result.returncode != 0
    assert f"There was an error processing assignment '{A}' for student 'notes_code'" in \
        result.stdout + result.stderr
    assert sorted(p.name for p in (course / "feedback").iterdir()) == \
        sorted(set(expected_points()) - {"notes_code"})


@grading_fixture(scope="module")
def batch_run(tmp_path_factory):
    """`python -m convgrader.batch` (one worker) on the same small class."""
    course = copy_course(tmp_path_factory.mktemp("refusing-batch") / "course")
    bad = small_class(course)
    result = run_in(course, sys.executable, "-m", "convgrader.batch", "--workers", "1",
                    check=False)
    return course, bad, result


@pytest.mark.grading
def test_the_batch_lists_each_bad_submission_with_its_reason(batch_run):
    _, bad, result = batch_run
    assert result.returncode == 1, result.stdout + result.stderr
    failed = sorted(line for line in result.stdout.splitlines() if line.startswith("FAILED"))
    assert failed == sorted(f"FAILED {A} {student}: {reason}" for student, reason in bad.items())


@pytest.mark.grading
def test_the_batch_grades_every_other_student_exactly(batch_run):
    course, bad, _ = batch_run
    assert gradebook_points(course) == expected_points()
    assert nothing_of(course, bad, "autograded") == []


def test_the_batch_lists_links_and_special_files_where_folders_should_be(tmp_path):
    submitted = tmp_path / "submitted"
    _folder(submitted, "alice")
    (submitted / "alice" / "notes.txt").write_text("not an assignment")
    os.symlink("elsewhere", submitted / "alice" / "02_other")
    linked_student_folder(submitted, "bob")
    os.mkfifo(submitted / "carol")
    (submitted / "README").write_text("not a student")
    assert submissions(tmp_path) == [(A, "alice"), (A, "bob"), (A, "carol")]


def test_a_schema_version_error_fails_that_student_only(tmp_path, monkeypatch):
    """Should nbgrader meet another schema version after the check (it stops every later
    student on it), CheckedAutograde makes it that student's refusal."""
    from nbgrader.nbgraderformat import SchemaTooNewError

    def too_new(self, notebook_filename):
        raise SchemaTooNewError("Schema version is too new: 99 (expected 3)", 99, 3)

    monkeypatch.setattr(Autograde, "convert_single_notebook", too_new)
    course = tmp_path / "course"
    converter = CheckedAutograde(coursedir=CourseDirectory(root=str(course)))
    logged = []
    monkeypatch.setattr(converter.log, "error", lambda line, *args: logged.append(line % args))
    with pytest.raises(SubmissionRefused) as refused:
        converter.convert_single_notebook(str(course / "submitted" / "alice" / A / NB))
    line = (f"alice/{A}: {NB} has nbgrader metadata of schema version 99, not 3: its "
            "metadata was edited")
    assert (str(refused.value), logged) == (line, [line])
