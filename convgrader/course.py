"""The course's bookkeeping: its configuration, its submissions, what is graded, what failed.

The batch grader (``convgrader.batch``) decides from these what to grade and writes the
failure files; the class status (``convgrader.tools.class_status``) reads the same to tell
the instructor where the class stands. Both import them from here, so neither imports the
other for them. Everything here is read from the course directory and its gradebook:
nothing runs student code.
"""
import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook, SubmittedAssignment
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

# Where a failed submission's reason waits until it is graded: a file per submission
# (grading_failures/<student>/<assignment>.txt), so that shards on other machines never
# write the same one.
FAILURES = "grading_failures"
MAX_WALKED_DEPTH = 64


def load_config(course_root: str | Path) -> Config:
    """The course's nbgrader configuration (its nbgrader_config.py)."""
    return PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config()


def open_gradebook(course_root: str | Path) -> Gradebook:
    """The course's gradebook (``CONVCOURSE_DB_URL`` or gradebook.db, as the configuration
    says), opened with nbgrader's own ``Gradebook``: use it in a ``with``."""
    coursedir = CourseDirectory(config=load_config(course_root))
    return Gradebook(coursedir.db_url, coursedir.course_id)


def submissions(course_root: str | Path, assignments: Collection[str] = (),
                students: Collection[str] = ()) -> list[tuple[str, str]]:
    """(assignment, student) of every submission folder, sorted, found without following
    links: links and special files where a folder should be are listed too (the grader
    refuses them with their reason), under the assignments' names the class uses."""
    def entries(path: Path | str) -> list[os.DirEntry[str]]:
        try:
            return [e for e in os.scandir(path) if not e.name.startswith(".")]
        except OSError:
            return []

    folders: list[tuple[str, str]] = []
    odd: list[tuple[str | None, str]] = []  # (None, student): no folder, a file or a link
    for student in entries(Path(course_root, "submitted")):
        if students and student.name not in students:
            continue
        if not student.is_dir(follow_symlinks=False):
            if not student.is_file(follow_symlinks=False) or student.is_symlink():
                odd.append((None, student.name))  # a link or a special file
            continue
        for entry in entries(student.path):
            if entry.is_dir(follow_symlinks=False):
                folders.append((entry.name, student.name))
            elif entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                odd.append((entry.name, student.name))
    named = set(assignments) or {a for a, _ in folders}
    found = {(a, s) for a, s in folders if not assignments or a in assignments}
    for a, s in odd:
        found.update((name, s) for name in ([a] if a is not None else named) if name in named)
    return sorted(found)


def is_graded(submission: SubmittedAssignment) -> bool:
    """Whether every grade of a gradebook submission has a score: nbgrader creates the row
    with empty grades and fills them at the end, so a grader stopped midway leaves none."""
    grades = [g for notebook in submission.notebooks for g in notebook.grades]
    return bool(grades) and all(g.auto_score is not None or g.manual_score is not None
                                for g in grades)


def already_graded(course_root: str | Path, gradebook: Gradebook, assignment: str,
                   student: str) -> bool:
    """Whether a submission is graded, and graded as it is now in ``submitted/``."""
    graded = Path(course_root, "autograded", student, assignment)
    if not graded.is_dir():
        return False
    try:
        submission = gradebook.find_submission(assignment, student)
    except Exception:
        return False
    # A grader killed midway (a requeued task) leaves the submission's row with empty
    # grades, and a sanitized but unexecuted copy in autograded/ (nbgrader writes it before
    # it runs the notebook, and again after the grades are saved): neither is a grade. The
    # row has one notebook for each of the assignment's.
    if not is_graded(submission) or \
            not all(_was_executed(graded / f"{n.name}.ipynb") for n in submission.notebooks):
        return False
    submitted = Path(course_root, "submitted", student, assignment)
    if submitted.parent.is_symlink() or submitted.is_symlink() or not submitted.is_dir():
        return False  # graded again, and refused with its reason
    newest, base = 0.0, str(submitted).count(os.sep)
    for folder, folders, files in os.walk(submitted):  # never into a linked folder
        if folder.count(os.sep) - base > MAX_WALKED_DEPTH:
            # os.walk recurses: a deep tree would raise RecursionError and stop the batch.
            # A folder this deep is refused when graded, with its reason.
            return False
        for name in folders + files:
            newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
    return all(p.stat().st_mtime >= newest for p in graded.glob("*.ipynb"))


def _was_executed(path: Path) -> bool:
    """Whether the autograded notebook at ``path`` is the one written after grading."""
    try:
        cells = json.loads(path.read_text())["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return any(c.get("cell_type") == "code" and c.get("outputs") for c in cells)


def failure_file(course_root: str | Path, assignment: str, student: str) -> Path:
    return Path(course_root, FAILURES, student, f"{assignment}.txt")


def record_outcome(course_root: str | Path, result: dict[str, Any]) -> None:
    """Keep a failed submission's reason where the class status finds it; a graded one
    removes it. ``result`` is the batch grader's: assignment, student, success, error."""
    path = failure_file(course_root, result["assignment"], result["student"])
    if result["success"]:
        path.unlink(missing_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{result['error'][0]}\n")


def failure_reason(course_root: str | Path, assignment: str, student: str) -> str | None:
    """Why the last grading of a submission failed, or None if no failure is recorded."""
    path = failure_file(course_root, assignment, student)
    if not path.is_file():
        return None
    return path.read_text().strip() or "(no reason given)"
