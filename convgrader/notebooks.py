"""Reading the nbgrader cells of a course notebook, and writing outputs into them."""
import re
from pathlib import Path
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode

_SOLUTION_OR_HIDDEN = re.compile(r"BEGIN (SOLUTION|HIDDEN TESTS)|END (SOLUTION|HIDDEN TESTS)")


def nbgrader_meta(cell: dict[str, Any]) -> dict[str, Any]:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_solution(cell: dict[str, Any]) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_test(cell: dict[str, Any]) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell["cell_type"] == "code"


def points_per_test_cell(nb: NotebookNode) -> dict[str, float]:
    """{grade_id: points} of the notebook's autograded test cells, in notebook order."""
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"])
            for c in nb.cells if is_test(c)}


def gives_away(cell: NotebookNode) -> str | None:
    """What a cell of a release notebook would give students that it must not: "solution
    code or hidden tests", "outputs", or None."""
    if _SOLUTION_OR_HIDDEN.search(cell.source):
        return "solution code or hidden tests"
    if cell.get("outputs"):
        return "outputs"
    return None


def read(path: Path | str) -> NotebookNode:
    return nbformat.read(str(path), as_version=4)


def error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


def stream_output(text: str, name: str = "stdout") -> NotebookNode:
    return NotebookNode(output_type="stream", name=name, text=text)
