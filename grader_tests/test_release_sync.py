"""release/ is what `nbgrader generate_assignment` makes of source/, and gives nothing away."""
import re

import pytest

from convgrader.notebooks import gives_away, is_solution, read
from course_copies import ASSIGNMENTS, COURSE_ROOT

STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def release_notebooks(root):
    return sorted(p.relative_to(root) for p in (root / "release").glob("*/*.ipynb"))


def test_release_has_exactly_the_generated_notebooks(released_course):
    assert release_notebooks(COURSE_ROOT) == release_notebooks(released_course), \
        "release/ is out of date: run `make release` and commit it"
    assert [p.parts[1] for p in release_notebooks(COURSE_ROOT)] == ASSIGNMENTS


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_matches_source_cell_by_cell(assignment, released_course):
    for committed_path in (COURSE_ROOT / "release" / assignment).glob("*.ipynb"):
        committed = read(committed_path)
        generated = read(released_course / "release" / assignment / committed_path.name)
        assert len(committed.cells) == len(generated.cells), \
            f"{committed_path.name}: cell count differs; run `make release`"
        for index, (mine, theirs) in enumerate(zip(committed.cells, generated.cells)):
            assert mine == theirs, \
                f"{committed_path.name}, cell {index} is out of date; run `make release`"
        assert committed.metadata == generated.metadata


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_holds_no_solution_and_no_hidden_test(assignment):
    for path in (COURSE_ROOT / "release" / assignment).glob("*.ipynb"):
        for cell in read(path).cells:
            given = gives_away(cell)
            assert given is None, f"{path.name}: cell {cell.id} gives away {given}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_solution_cells_keep_signature_and_docstring(assignment):
    source_nb = read(next((COURSE_ROOT / "source" / assignment).glob("*.ipynb")))
    release_nb = read(next((COURSE_ROOT / "release" / assignment).glob("*.ipynb")))
    source_cells = {c.id: c for c in source_nb.cells if is_solution(c)}
    release_cells = [c for c in release_nb.cells if is_solution(c)]
    assert release_cells, f"{assignment} has no graded answer cell"
    for cell in release_cells:
        head = source_cells[cell.id].source.split("### BEGIN SOLUTION")[0]
        assert re.match(r'def \w+\(.*\):\n    """', head), f"{cell.id}: no def line and docstring"
        assert cell.source.startswith(head), f"{cell.id}: the release lost the def or docstring"
        assert STUB.replace("\n", "\n    ") in cell.source, f"{cell.id}: no nbgrader stub"
