"""A submission's notebooks, checked as nbgrader would read them, before it reads them.

A malformed notebook stops nbgrader with an error that does not say what is wrong with it,
and a cell whose nbgrader metadata has an unknown schema version stops the grading of every
later student. ``check_folder`` walks a submission folder (``folders.walk``, no link
followed) and reads its notebooks through the same file descriptors; ``check_notebook``
refuses, with one line saying what is wrong, a notebook that is not JSON, not a notebook,
not format 4, has cells without their keys or no cells, a graded cell twice, nbgrader
metadata of another schema version, or lost cells that nbgrader cannot put back.
"""
import json
import os
import stat
from dataclasses import dataclass
from typing import Any

import nbformat
from jsonschema.exceptions import best_match
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.nbgraderformat import SCHEMA_VERSION

from convgrader.submissions.folders import (FileSize, SubmissionLimits, SubmissionRefused, mib,
                                            open_submission, read_file, reading, show, walk)

_CELL_KEYS = {"code": ("metadata", "source", "outputs", "execution_count"),
              "markdown": ("metadata", "source"), "raw": ("metadata", "source")}


@dataclass
class NotebookCells:
    """What the gradebook records of one notebook: its cells' grade ids, in its order."""
    name: str
    source: list[str]  # every cell nbgrader tracks, in the gradebook's order
    grade: list[str]   # graded cells (tests, and answers with points), in the gradebook's order
    solution: list[str]


def gradebook_notebooks(db_url: str, course_id: str,
                        assignment: str) -> dict[str, NotebookCells] | None:
    """{notebook name: NotebookCells} of an assignment, or None if the gradebook lacks it."""
    with Gradebook(db_url, course_id) as gb:
        try:
            found = gb.find_assignment(assignment)
        except MissingEntry:
            return None
        return {nb.name: NotebookCells(nb.name, [c.name for c in nb.source_cells],
                                       [c.name for c in nb.grade_cells],
                                       [c.name for c in nb.solution_cells])
                for nb in found.notebooks}


def _type_name(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "?")


def _schema_error(error: Exception, name: str) -> str:
    """One line from nbformat's schema error: where, and the innermost reason."""
    where = list(getattr(error, "absolute_path", None) or [])
    context = getattr(error, "context", None)  # jsonschema's errors of the alternatives
    if context:
        inner = best_match(context)
        if inner is not None:
            where += list(inner.relative_path)
            error = inner
    if len(where) >= 2 and where[0] == "cells" and isinstance(where[1], int):
        place = f"cell {where[1] + 1}" + "".join(f".{p}" for p in where[2:])
    else:
        place = ".".join(str(p) for p in where)
    message = str(getattr(error, "message", error)).splitlines()[0]
    return (f"{name} is not a valid notebook: " + (f"{show(place, 60)}: " if place else "")
            + show(message, 100))


def check_notebook(data: bytes, name: str,
                   cells: NotebookCells | None = None) -> nbformat.NotebookNode:
    """The notebook ``data`` (bytes of ``name``) parsed as nbgrader reads it, or
    ``SubmissionRefused`` saying what is wrong with it. ``cells`` (from the gradebook)
    adds the checks of graded cells."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SubmissionRefused(f"{name} is not UTF-8 text (byte {error.start}): it is "
                                "not a Jupyter notebook") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise SubmissionRefused(f"{name} is not valid JSON ({error.msg} at line "
                                f"{error.lineno}, column {error.colno}): it is not a "
                                "Jupyter notebook, or was cut short") from None
    except RecursionError:
        raise SubmissionRefused(f"{name} is not a notebook: its JSON is nested too deeply") \
            from None
    except ValueError as error:  # e.g. a number of more digits than Python converts
        raise SubmissionRefused(f"{name} is not valid JSON ({show(str(error), 60)}): it is "
                                "not a Jupyter notebook") from None
    if not isinstance(raw, dict):
        raise SubmissionRefused(f"{name} is not a notebook: its JSON is {_type_name(raw)}, "
                                "not an object")
    version = raw.get("nbformat")
    if "nbformat" not in raw:
        raise SubmissionRefused(f"{name} has no nbformat version: it is not a Jupyter notebook")
    if type(version) is not int or version != 4:
        raise SubmissionRefused(f"{name} is in notebook format {show(repr(version), 20)}, "
                                "not 4: start again from the release notebook")
    for key, kind in (("metadata", dict), ("nbformat_minor", int)):
        if key not in raw:
            raise SubmissionRefused(f"{name} has no {key}: it is not a valid notebook")
        if not isinstance(raw[key], kind) or isinstance(raw[key], bool):
            raise SubmissionRefused(f"{name} is not a valid notebook: its {key} is "
                                    f"{_type_name(raw[key])}")
    if not isinstance(raw.get("cells"), list):
        raise SubmissionRefused(f"{name} has no list of cells: it is not a valid notebook")
    if not raw["cells"]:
        raise SubmissionRefused(f"{name} has no cells: start again from the release notebook")
    for number, cell in enumerate(raw["cells"], 1):
        _check_cell(cell, number, name)
    captured: dict[str, Exception] = {}
    try:
        nb = nbformat.reads(text, as_version=4, capture_validation_error=captured)
        if "ValidationError" in captured:
            # Keys the schema does not know do not stop nbgrader: only what it lacks does.
            nbformat.validate(nb, relax_add_props=True)
    except Exception as error:  # nbformat's reader or validator
        raise SubmissionRefused(_schema_error(error, name)) from None
    _check_nbgrader_cells(raw["cells"], name, cells)
    return nb


def _check_cell(cell: object, number: int, name: str) -> None:
    if not isinstance(cell, dict):
        raise SubmissionRefused(f"{name}: cell {number} is {_type_name(cell)}, not an object")
    kind = cell.get("cell_type")
    if kind not in _CELL_KEYS:
        raise SubmissionRefused(f"{name}: cell {number} has cell_type {show(repr(kind), 30)}, "
                                "not code, markdown or raw")
    for key in _CELL_KEYS[kind]:
        if key not in cell:
            raise SubmissionRefused(f"{name}: cell {number} ({kind}) has no {key}")
    if not isinstance(cell["metadata"], dict):
        raise SubmissionRefused(f"{name}: cell {number}'s metadata is "
                                f"{_type_name(cell['metadata'])}, not an object")


def _check_nbgrader_cells(raw_cells: list[dict[str, Any]], name: str,
                          cells: NotebookCells | None) -> None:
    """nbgrader metadata that nbgrader's own steps would stop on: another schema version
    (which stops the whole run), a graded cell without a grade_id or twice, and missing
    cells that nbgrader cannot put back."""
    seen: dict[str, int] = {}  # grade_id: cell number
    for number, cell in enumerate(raw_cells, 1):
        if "nbgrader" not in cell["metadata"]:
            continue
        meta = cell["metadata"]["nbgrader"]
        if not isinstance(meta, dict):
            raise SubmissionRefused(f"{name}: cell {number}'s nbgrader metadata is "
                                    f"{_type_name(meta)}, not an object")
        grade_id = meta.get("grade_id")
        label = f"cell {number}" + (f" ({show(grade_id, 40)})" if isinstance(grade_id, str) else "")
        version = meta.get("schema_version")
        if type(version) is not int or version != SCHEMA_VERSION:
            said = ("no schema version" if "schema_version" not in meta
                    else f"schema version {show(repr(version), 20)}")
            raise SubmissionRefused(f"{name}: {label} has nbgrader metadata of {said}, not "
                                    f"{SCHEMA_VERSION}: its metadata was edited; start again "
                                    "from the release notebook")
        if "grade_id" not in meta:
            if any(meta.get(k) for k in ("grade", "solution", "locked", "task")):
                raise SubmissionRefused(f"{name}: {label} is an nbgrader cell without a "
                                        "grade_id: its metadata was edited")
            continue
        if not isinstance(grade_id, str):
            raise SubmissionRefused(f"{name}: {label}'s grade_id is {_type_name(grade_id)}, "
                                    "not a string: its metadata was edited")
        if grade_id in seen:
            raise SubmissionRefused(f"{name}: cells {seen[grade_id]} and {number} are both "
                                    f"{show(grade_id, 40)}: delete the copy")
        seen[grade_id] = number
    if cells is not None:
        _check_restorable(seen, name, cells)


def _check_restorable(seen: dict[str, int], name: str, cells: NotebookCells) -> None:
    """nbgrader's ``OverwriteCells.add_missing_grade_cells`` puts a deleted test cell back
    after the cell that precedes it in the instructor's notebook, and fails with a KeyError
    when that cell is gone too: say which cells are missing instead."""
    present = {gid for gid in seen if gid in cells.grade or gid in cells.solution}
    for gid in cells.grade:
        if gid in present:
            continue
        index = cells.source.index(gid) if gid in cells.source else 0
        before = cells.source[index - 1] if index > 0 else None
        if before is not None and before not in present:
            raise SubmissionRefused(f"{name} has lost the cell {show(before, 40)} and the "
                                    f"test cell {show(gid, 40)} after it: the grader cannot "
                                    "put the test back; start again from the release notebook")
        present.add(gid)


def _notebook_names(files: list[FileSize]) -> list[str]:
    """Notebooks nbgrader would grade: ``*.ipynb`` at the top of the folder (glob's rules)."""
    return sorted(p for p, _ in files if "/" not in p and not p.startswith(".")
                  and p.endswith(".ipynb"))


def check_folder(root: str, student: str, assignment: str, limits: SubmissionLimits,
                 notebooks: dict[str, NotebookCells] | None = None
                 ) -> dict[str, nbformat.NotebookNode]:
    """Check ``root/student/assignment`` before anything is copied; return
    {notebook file name: parsed notebook} of the notebooks nbgrader will grade, or raise
    ``SubmissionRefused``. ``notebooks``: ``gradebook_notebooks`` of the assignment."""
    with reading():
        fd = open_submission(root, student, assignment)
    try:
        files = walk(fd, limits)
        found = _notebook_names(files)
        wanted = sorted(f"{n}.ipynb" for n in notebooks) if notebooks is not None else found
        present = [n for n in wanted if n in found or _exists(fd, n)]
        if not present:
            if not wanted:
                raise SubmissionRefused("the folder has no notebook")
            missing = " and ".join(wanted)
            if not found:
                raise SubmissionRefused(f"{missing} is missing: the folder has no notebook")
            others = ", ".join(show(n, 40) for n in found[:3]) + (", ..." if len(found) > 3 else "")
            raise SubmissionRefused(f"{missing} is missing (found {others}): keep the "
                                    "notebook's name")
        with reading():
            return {filename: read_notebook(fd, filename, limits, notebooks)
                    for filename in present}
    finally:
        os.close(fd)


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False


def read_notebook(dir_fd: int, filename: str, limits: SubmissionLimits,
                  notebooks: dict[str, NotebookCells] | None = None) -> nbformat.NotebookNode:
    """Read and check one notebook of a submission folder (never through a link)."""
    try:
        mode = os.stat(filename, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        raise SubmissionRefused(f"{show(filename)} is missing") from None
    if stat.S_ISDIR(mode):
        raise SubmissionRefused(f"{show(filename)} is a folder, not a notebook file")
    limit = limits.max_notebook_bytes
    data, _ = read_file(dir_fd, filename, filename, limit,
                        f"a notebook may be at most {mib(limit)}")
    cells = (notebooks or {}).get(filename[:-len(".ipynb")])
    return check_notebook(data, show(filename), cells)

