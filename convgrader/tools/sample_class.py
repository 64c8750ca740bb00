"""The bundled sample class: submissions built from release notebooks by filling graded cells.

Layout of a class folder (``grader_tests/sample_class``)::

    <assignment>/<student>.py      the student's answer cells, each after a line
                                   "# %% <grade_id>" naming the solution cell it fills
    <assignment>/expected.toml     [<student>] <test grade_id> = points it must earn

A student's submission of an assignment is the release notebook with those cells filled;
cells the file does not name keep the release stub, so an empty file is an untouched
notebook. Submissions that tamper with the notebook say how, with one more word:

    # %% edit <grade_id>             the cell's source becomes the lines that follow
    # %% delete <grade_id>           the cell is removed
    # %% metadata <grade_id> {json}  the cell's nbgrader metadata is updated with {json}

and a submission that answers a cell as another sample student does says so:

    # %% same <grade_id> as <student>  the cell is filled as <student>.py fills it

    convgrader sample-class build CLASS_DIR RELEASE_DIR SUBMITTED_DIR
    convgrader sample-class preview CLASS_DIR SOURCE_DIR [ASSIGNMENT]

``preview`` runs each answer inside the instructor's source notebook (hidden tests
included) with nbclient and prints the points each test cell would give; it is a quick
preview, ``nbgrader autograde`` gives the grades.
"""
import argparse
import copy
import json
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearSolutions

from convgrader.notebooks import is_solution, is_test, nbgrader_meta, read, points_per_test_cell
from convgrader.tools import COURSE_ROOT

COURSE_SOURCE = COURSE_ROOT / "source"
_MARKER = re.compile(r"^# %% (?:(edit|delete|metadata|same) )?(\S+)[ \t]*(.*)$", re.MULTILINE)


@dataclass
class Edit:
    action: str  # "fill" a solution cell, "edit" any cell's source, "delete", "metadata"
    grade_id: str
    body: str = ""
    metadata: dict = field(default_factory=dict)


def load_answers(path: Path | str) -> list[Edit]:
    """The edits an answer file makes, in order."""
    text = Path(path).read_text()
    parts = _MARKER.split(text)
    if parts[0].strip() and not parts[0].lstrip().startswith(("#", '"""')):
        raise ValueError(f"{path}: code before the first '# %% <grade_id>' line")
    edits: list[Edit] = []
    for action, grade_id, rest, body in zip(parts[1::4], parts[2::4], parts[3::4], parts[4::4]):
        if action == "same":
            other = Path(path).with_name(rest.removeprefix("as").strip() + ".py")
            (body,) = [e.body for e in load_answers(other) if e.grade_id == grade_id]
            action = "fill"
        edits.append(Edit(action or "fill", grade_id, body.strip("\n"),
                          json.loads(rest) if action == "metadata" else {}))
    return edits


def fill(nb: NotebookNode, edits: Iterable[Edit], source_name: str = "answers") -> NotebookNode:
    """A copy of ``nb`` with the edits made: solution cells filled, or cells tampered with."""
    nb = copy.deepcopy(nb)
    cells = {nbgrader_meta(c).get("grade_id"): c for c in nb.cells if nbgrader_meta(c)}
    for edit in edits:
        cell = cells.get(edit.grade_id)
        if cell is None or (edit.action == "fill" and not is_solution(cell)):
            raise ValueError(f"{source_name}: no {'solution ' * (edit.action == 'fill')}cell "
                             f"named {edit.grade_id!r}; the notebook has "
                             # nbgrader gives every cell it knows a grade_id, a str
                             f"{sorted(cells)}")  # type: ignore[type-var]
        if edit.action in ("fill", "edit"):
            cell.source = edit.body
        elif edit.action == "delete":
            nb.cells.remove(cell)
        elif edit.action == "metadata":
            cell.metadata.nbgrader.update(edit.metadata)
    return nb


def assignments(class_dir: Path | str) -> list[str]:
    return sorted(p.name for p in Path(class_dir).iterdir() if p.is_dir())


def students(class_dir: Path | str, assignment: str) -> list[str]:
    return sorted(p.stem for p in (Path(class_dir) / assignment).glob("*.py"))


def expected_scores(class_dir: Path | str, assignment: str) -> dict[str, Any]:
    """{student: {test grade_id: points}} for one assignment."""
    with open(Path(class_dir) / assignment / "expected.toml", "rb") as f:
        return tomllib.load(f)


def notebook_path(course_dir: Path | str, assignment: str) -> Path:
    """The one notebook of an assignment folder in source/ or release/."""
    (path,) = sorted((Path(course_dir) / assignment).glob("*.ipynb"))
    return path


def build(class_dir: Path | str, release_dir: Path | str,
          submitted_dir: Path | str) -> list[Path]:
    """Write submitted/<student>/<assignment>/<notebook> for every answer file."""
    written: list[Path] = []
    for assignment in assignments(class_dir):
        release = notebook_path(release_dir, assignment)
        nb = read(release)
        for student in students(class_dir, assignment):
            answer_file = Path(class_dir) / assignment / f"{student}.py"
            filled = fill(nb, load_answers(answer_file), str(answer_file))
            out = Path(submitted_dir) / student / assignment / release.name
            out.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(filled, str(out))
            written.append(out)
    return written


def preview(class_dir: Path | str, source_dir: Path | str, assignment: str,
            timeout: int = 120) -> dict[str, dict[str, float]]:
    """{student: {test grade_id: points}} from running answers in the source notebook."""
    source_path = notebook_path(source_dir, assignment)
    # The student's starting point: solutions cleared to stubs, hidden tests kept.
    source, _ = ClearSolutions().preprocess(read(source_path), {})
    points = points_per_test_cell(source)
    results: dict[str, dict[str, float]] = {}
    for student in students(class_dir, assignment):
        nb = fill(source, load_answers(Path(class_dir) / assignment / f"{student}.py"))
        NotebookClient(nb, timeout=timeout, allow_errors=True,
                       resources={"metadata": {"path": str(source_path.parent)}}).execute()
        results[student] = {
            nbgrader_meta(c)["grade_id"]: 0.0 if any(o.output_type == "error" for o in c.outputs)
            else points[nbgrader_meta(c)["grade_id"]]
            for c in nb.cells if is_test(c)}
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="write the sample submissions")
    b.add_argument("class_dir"), b.add_argument("release_dir"), b.add_argument("submitted_dir")
    p = commands.add_parser("preview", help="points per test cell, and expected.toml's")
    p.add_argument("class_dir"), p.add_argument("source_dir")
    p.add_argument("assignment", nargs="*")
    args = parser.parse_args(argv)
    if args.command == "build":
        for path in build(args.class_dir, args.release_dir, args.submitted_dir):
            print(path)
        return 0
    status = 0
    for assignment in args.assignment or assignments(args.class_dir):
        expected = expected_scores(args.class_dir, assignment)
        for student, got in preview(args.class_dir, args.source_dir, assignment).items():
            want = expected.get(student)
            verdict = "ok" if want == got else f"MISMATCH, expected.toml says {want}"
            status |= want != got
            print(f"{assignment} {student}: {got} {verdict}")
    return status


if __name__ == "__main__":
    sys.exit(main())
