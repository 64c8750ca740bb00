"""Submission folders and notebooks, checked before nbgrader copies or reads them.

nbgrader's autograde copies ``submitted/<student>/<assignment>/`` into ``autograded/`` with
the grader's rights, outside the sandbox, following symbolic links (``shutil.copy``), and
reads the notebook through its path (``Exporter.from_filename``): a link to the gradebook
or to ``source/`` lands in the graded folder, a notebook that is a link to the solution
earns its points, a link to ``/dev/zero`` fills the disk. A malformed notebook stops with
an error that does not say what is wrong with it, and a cell whose nbgrader metadata has an
unknown schema version stops the grading of every later student.

Where nbgrader copies a submission: ``BaseConverter.convert_notebooks`` calls, for each
submission, ``init_destination`` (removes an old graded copy with --force), the
``pre_convert_hook``, then ``Autograde.init_assignment``, whose first step,
``BaseConverter.init_assignment``, copies every file but the notebooks; each notebook is
then read by ``convert_single_notebook``. nbgrader has no hook that can refuse a submission
there: ``pre_convert_hook`` runs before the copy but is given the command's assignment and
student *patterns*, and its exceptions are logged at INFO and ignored. The converter class
is not configurable either: ``AutogradeApp.start`` and ``NbGraderAPI.autograde`` build
``Autograde(...)`` from their modules' globals. So nbgrader_config.py calls
``use_checked_autograde()``, which points those two names at ``CheckedAutograde``, a
subclass of nbgrader's ``Autograde`` that

- checks each submission in ``init_destination``, before anything is copied or removed:
  without following any link (``lstat``, and ``openat`` with ``O_NOFOLLOW`` from the
  submitted/ folder down), it refuses links (to files or folders, anywhere in the tree,
  the student's or the assignment's folder itself too), devices, FIFOs and sockets,
  folders over ``SubmissionLimits`` (bytes, entries, depth), and malformed notebooks (not
  JSON, not a notebook, not format 4, cells without their keys, no cells, a graded cell
  twice, nbgrader metadata of another schema version, the notebook missing or renamed);
- copies the other files and reads the notebook itself, through the same file descriptors,
  so a folder changed between the check and the copy is refused again, never followed
  (nbgrader's two reads, in a class between ``Autograde`` and ``BaseConverter``);
- turns nbgrader's schema-version errors, which stop the whole run, into that student's
  failure.

A refused submission is logged as one line, ``<student>/<assignment>: <reason>``; nbgrader
then counts it as failed (its graded copy removed, exit status 1) and grades the others.
The batch grader (``convgrader.batch``) grades through the same class.
"""
import datetime
import errno
import fnmatch
import glob
import json
import mimetypes
import os
import stat
from dataclasses import dataclass, field

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde
from nbgrader.converters.base import BaseConverter, NbGraderException
from nbgrader.nbgraderformat import SCHEMA_VERSION
from nbgrader.nbgraderformat.common import SchemaMismatchError
from traitlets import Instance, Integer, default
from traitlets.config import LoggingConfigurable

MiB = 2 ** 20
_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFIFO: "a named pipe (FIFO)",
          stat.S_IFSOCK: "a socket"}
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CELL_KEYS = {"code": ("metadata", "source", "outputs", "execution_count"),
              "markdown": ("metadata", "source"), "raw": ("metadata", "source")}


# The formgrader serves every file of a graded folder to the grader's browser, with the
# instructor's login (nbgrader's SubmissionFilesHandler, a tornado StaticFileHandler, which
# takes the type from the name): a student's page.html or drawing.svg would run there. A
# submission's other files are copied into autograded/ only when that type is one a browser
# shows as text or an image, or downloads.
SERVED_SAFELY = {"text/plain", "text/csv", "text/markdown", "text/x-python", "application/json",
                 "application/octet-stream", "image/png", "image/jpeg", "image/gif", None}


def served_safely(name):
    """Whether the formgrader would serve a file of this name as a type that runs nothing:
    the types above, and vendors' binary types (``.pt`` is a SNES page table to
    /etc/mime.types), which a browser downloads, but for any XML or script."""
    kind, encoding = mimetypes.guess_type(name)
    if encoding:  # compressed: tornado says application/gzip, or bytes
        return True
    return kind in SERVED_SAFELY or (
        kind.startswith(("application/vnd.", "application/x-"))
        and "xml" not in kind and "script" not in kind)


class SubmissionRefused(Exception):
    """A submission the grader will not copy or read; ``str()`` is the one-line reason."""


class SubmissionLimits(LoggingConfigurable):
    """How large a submission folder may be (``c.SubmissionLimits.<name>`` in the config)."""

    max_bytes = Integer(50 * MiB,
                        help="Bytes of all files in a submission folder.").tag(config=True)
    max_entries = Integer(200, help="Files and folders in a submission folder.").tag(config=True)
    max_depth = Integer(5, help="Folders nested in a submission folder.").tag(config=True)
    max_notebook_bytes = Integer(20 * MiB, help="Bytes of one notebook.").tag(config=True)


def refusal_line(student, assignment, reason):
    """The line a refusal is logged as, in nbgrader's log and the batch grader's."""
    return f"{student}/{assignment}: {reason}"


def show(name, limit=80):
    """A file name as one printable line (control characters escaped), shortened."""
    text = name if name.isprintable() else repr(name)[1:-1]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _mib(size):
    return f"{size / MiB:.1f} MiB"


def _kind(mode):
    return _KINDS.get(stat.S_IFMT(mode), "a special file")


def _refuse_special(rel, mode, dir_fd, name):
    """Refuse a file that is not a regular file or a folder; links say where they point."""
    if stat.S_ISLNK(mode):
        try:
            target = f" to {show(os.readlink(name, dir_fd=dir_fd))}"
        except OSError:
            target = ""
        raise SubmissionRefused(f"{show(rel)} is a symbolic link{target}: a submission may "
                                "hold only regular files and folders")
    raise SubmissionRefused(f"{show(rel)} is {_kind(mode)}: a submission may hold only "
                            "regular files and folders")


def _open_dir(name, dir_fd, rel):
    """Open folder ``name`` without following a link (one found now was swapped in)."""
    try:
        return os.open(name, _OPEN_DIR, dir_fd=dir_fd)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
            if stat.S_ISREG(mode):
                raise SubmissionRefused(f"{show(rel)} changed from a folder to a file while "
                                        "the grader read it") from None
            _refuse_special(rel, mode, dir_fd, name)
        raise


def open_submission(root, student, assignment):
    """A file descriptor of ``root/student/assignment``, opened folder by folder without
    following any link: each folder is checked as it is opened, so none can be swapped."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    rel = os.path.basename(os.path.normpath(root))
    try:
        for name in (student, assignment):
            rel = f"{rel}/{name}"
            try:
                mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            except FileNotFoundError:
                raise SubmissionRefused(f"{show(rel)} does not exist") from None
            if stat.S_ISLNK(mode):
                _refuse_special(rel, mode, fd, name)
            if stat.S_ISREG(mode):
                raise SubmissionRefused(f"{show(rel)} is a file, not a folder")
            if not stat.S_ISDIR(mode):
                raise SubmissionRefused(f"{show(rel)} is {_kind(mode)}, not a folder")
            parent, fd = fd, None
            try:
                fd = _open_dir(name, parent, rel)
            finally:
                os.close(parent)
        return fd
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise


@dataclass
class _Walk:
    limits: SubmissionLimits
    entries: int = 0
    bytes: int = 0
    files: list = field(default_factory=list)  # (relative path, size) of regular files
    contents: list = field(default_factory=list)  # (relative path, bytes, mode) read
    read: int = 0

    def count(self, rel, size=0):
        self.entries += 1
        self.bytes += size
        if self.entries > self.limits.max_entries:
            raise SubmissionRefused(f"the folder holds more than {self.limits.max_entries} "
                                    f"files and folders (stopped at {show(rel)})")
        if self.bytes > self.limits.max_bytes:
            raise SubmissionRefused(f"the folder holds more than "
                                    f"{_mib(self.limits.max_bytes)} (stopped at {show(rel)})")


def _entries(dir_fd, limits, rel):
    """The names in a folder, sorted; refused beyond ``limits.max_entries``."""
    names = []
    with os.scandir(dir_fd) as it:
        for entry in it:
            names.append(entry.name)
            if len(names) > limits.max_entries:
                raise SubmissionRefused(f"the folder holds more than {limits.max_entries} "
                                        f"files and folders (in {show(rel or '.')})")
    return sorted(names)


def walk(dir_fd, limits, copy_ignoring=None):
    """Every entry under a folder, by ``lstat``, refusing anything but regular files and
    folders and anything over ``limits``. Returns the regular files as (path, size); with
    ``copy_ignoring`` (nbgrader's glob patterns of files and folders not to copy), their
    contents too, (path, bytes, mode) for each file not ignored, read without following a
    link."""
    state = _Walk(limits)
    with reading():
        _walk(dir_fd, state, copy_ignoring, "", 0)
    return state.contents if copy_ignoring is not None else state.files


class reading:
    """Turn an error reading a submission (a folder without permission, ...) into its
    refusal."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is not None and issubclass(kind, OSError):
            where = (f" ({show(os.path.basename(error.filename))})"
                     if isinstance(error.filename, str) else "")
            raise SubmissionRefused(f"the folder could not be read: "
                                    f"{error.strerror or error}{where}") from None
        return False


def _walk(dir_fd, state, ignore, rel, depth):
    limits = state.limits
    for name in _entries(dir_fd, limits, rel):
        path = f"{rel}/{name}" if rel else name
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            state.count(path)
            if depth + 1 > limits.max_depth:
                raise SubmissionRefused(f"{show(path)} is nested {depth + 1} folders deep "
                                        f"({limits.max_depth} allowed)")
            sub = _open_dir(name, dir_fd, path)
            try:
                copied = ignore is not None and not is_ignored(name, ignore)
                _walk(sub, state, ignore if copied else None, path, depth + 1)
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode):
            state.count(path, st.st_size)
            state.files.append((path, st.st_size))
            if ignore is not None and not is_ignored(name, ignore):
                left = limits.max_bytes - state.read
                data, st = read_file(dir_fd, name, path, left, "the folder holds more than "
                                     f"{_mib(limits.max_bytes)}")
                state.read += len(data)
                state.contents.append((path, data, st.st_mode))
        else:
            _refuse_special(path, st.st_mode, dir_fd, name)


def matches(name, pattern):
    """Whether glob's ``pattern`` matches the file name ``name`` (a wildcard does not match
    a leading dot)."""
    if not glob.has_magic(pattern):
        return name == pattern
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def is_ignored(name, patterns):
    """Whether nbgrader's ``utils.is_ignored`` (glob patterns matched against a file's own
    name) leaves ``name`` out."""
    return any(matches(name, pattern) for pattern in patterns)


def read_file(dir_fd, name, rel, limit, over):
    """The bytes of a regular file, opened without following a link; refused beyond
    ``limit`` bytes, with ``over`` saying which limit."""
    try:
        fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            _refuse_special(rel, os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode,
                            dir_fd, name)
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            _refuse_special(rel, st.st_mode, dir_fd, name)
        # The size first, then at most one byte more than the limit: the file may grow.
        if st.st_size > limit or len(data := f.read(limit + 1)) > limit:
            raise SubmissionRefused(f"{show(rel)} is over {_mib(limit)}: {over}")
    return data, st


# --- Notebooks -------------------------------------------------------------------------

@dataclass
class NotebookCells:
    """What the gradebook records of one notebook: its cells' grade ids, in its order."""
    name: str
    source: list   # every cell nbgrader tracks, in the gradebook's order
    grade: list    # graded cells (tests, and answers with points), in the gradebook's order
    solution: list


def gradebook_notebooks(db_url, course_id, assignment):
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


def _type_name(value):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "?")


def _schema_error(error, name):
    """One line from nbformat's schema error: where, and the innermost reason."""
    from jsonschema.exceptions import best_match
    where = list(getattr(error, "absolute_path", None) or [])
    if getattr(error, "context", None):
        inner = best_match(error.context)
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


def check_notebook(data, name, cells=None):
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
    captured = {}
    try:
        nb = nbformat.reads(text, as_version=4, capture_validation_error=captured)
        if "ValidationError" in captured:
            # Keys the schema does not know do not stop nbgrader: only what it lacks does.
            nbformat.validate(nb, relax_add_props=True)
    except Exception as error:  # nbformat's reader or validator
        raise SubmissionRefused(_schema_error(error, name)) from None
    _check_nbgrader_cells(raw["cells"], name, cells)
    return nb


def _check_cell(cell, number, name):
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


def _check_nbgrader_cells(raw_cells, name, cells):
    """nbgrader metadata that nbgrader's own steps would stop on: another schema version
    (which stops the whole run), a graded cell without a grade_id or twice, and missing
    cells that nbgrader cannot put back."""
    seen = {}
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


def _check_restorable(seen, name, cells):
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


def _notebook_names(files):
    """Notebooks nbgrader would grade: ``*.ipynb`` at the top of the folder (glob's rules)."""
    return sorted(p for p, _ in files if "/" not in p and not p.startswith(".")
                  and p.endswith(".ipynb"))


def check_folder(root, student, assignment, limits, notebooks=None):
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


def _exists(dir_fd, name):
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False


def read_notebook(dir_fd, filename, limits, notebooks=None):
    """Read and check one notebook of a submission folder (never through a link)."""
    try:
        mode = os.stat(filename, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        raise SubmissionRefused(f"{show(filename)} is missing") from None
    if stat.S_ISDIR(mode):
        raise SubmissionRefused(f"{show(filename)} is a folder, not a notebook file")
    limit = limits.max_notebook_bytes
    data, _ = read_file(dir_fd, filename, filename, limit,
                        f"a notebook may be at most {_mib(limit)}")
    cells = (notebooks or {}).get(filename[:-len(".ipynb")])
    return check_notebook(data, show(filename), cells)


# --- nbgrader's autograde, checked -------------------------------------------------------

class _CheckedReads(BaseConverter):
    """``BaseConverter``'s copy of a submission's files and read of its notebooks, made
    through file descriptors opened without following links. ``CheckedAutograde`` puts it
    between ``Autograde`` and ``BaseConverter``, so ``Autograde``'s own calls of
    ``super().init_assignment`` and ``super().convert_single_notebook`` come here."""

    def init_assignment(self, assignment_id, student_id):
        if not self._sanitizing:
            return super().init_assignment(assignment_id, student_id)
        source = self._format_source(assignment_id, student_id)
        dest = self._format_dest(assignment_id, student_id)
        with self._refusing(assignment_id, student_id), reading():
            fd = open_submission(self._submitted_root(), student_id, assignment_id)
            try:
                files = walk(fd, self.limits, list(self.coursedir.ignore) + ["*.ipynb"])
            finally:
                os.close(fd)
        for rel, data, mode in files:
            if not served_safely(rel):
                self.log.warning(
                    "%s%s is not copied into the graded folder: the formgrader would serve "
                    "it as %s, which a browser runs", refusal_line(student_id, assignment_id, ""),
                    show(rel), mimetypes.guess_type(rel)[0])
                continue
            path = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.lexists(path):
                os.remove(path)
            self.log.info("Copying %s -> %s", os.path.join(source, rel), path)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, stat.S_IMODE(mode) & 0o777)

    def convert_single_notebook(self, notebook_filename):
        if not self._sanitizing:
            return super().convert_single_notebook(notebook_filename)
        self.log.info("Converting notebook %s", notebook_filename)
        resources = self.init_single_notebook_resources(notebook_filename)
        info = resources["nbgrader"]
        filename = os.path.basename(notebook_filename)
        with self._refusing(info["assignment"], info["student"]), reading():
            fd = open_submission(self._submitted_root(), info["student"], info["assignment"])
            try:
                nb = read_notebook(fd, filename, self.limits, self._notebooks)
                mtime = os.stat(filename, dir_fd=fd, follow_symlinks=False).st_mtime
            finally:
                os.close(fd)
        # What nbconvert's Exporter.from_filename puts in the resources.
        meta = resources.setdefault("metadata", {})
        meta["name"] = os.path.splitext(filename)[0]
        meta["path"] = os.path.dirname(notebook_filename)
        meta["modified_date"] = datetime.datetime.fromtimestamp(
            mtime, tz=datetime.timezone.utc).strftime("%B %-d, %Y")
        output, resources = self.exporter.from_notebook_node(nb, resources=resources)
        self.write_single_notebook(output, resources)


class CheckedAutograde(Autograde, _CheckedReads):
    """nbgrader's ``Autograde``, refusing submissions it should not copy or cannot grade."""

    limits = Instance(SubmissionLimits)
    _notebooks = None  # the gradebook's notebooks of the submission being graded

    @default("limits")
    def _limits_default(self):
        return SubmissionLimits(parent=self)

    def _submitted_root(self):
        return os.path.join(self.coursedir.root, self.coursedir.submitted_directory)

    def _refusing(self, assignment_id, student_id):
        return _LogRefusal(self, assignment_id, student_id)

    def init_notebooks(self):
        """nbgrader's, plus the submission folders it would skip in silence or follow: one
        without a notebook, and a student's entry that is a link or no folder at all."""
        try:
            super().init_notebooks()
            missing = None
        except NbGraderException as error:  # no notebook matched at all
            missing = error
        for folder in self._submission_folders():
            self.assignments.setdefault(folder, [])
        if not self.assignments:
            raise missing

    def _submission_folders(self):
        pattern = self._format_source(self.coursedir.assignment_id, self.coursedir.student_id)
        folders = set(glob.glob(pattern))
        layout = os.path.join("{nbgrader_step}", "{student_id}", "{assignment_id}")
        assignment = self.coursedir.assignment_id
        if self.coursedir.directory_structure != layout or glob.has_magic(assignment):
            return folders
        root = self._submitted_root()
        try:
            entries = list(os.scandir(root))
        except OSError:
            return folders
        for entry in entries:  # a link or a special file where a student's folder should be
            if matches(entry.name, self.coursedir.student_id) and (
                    entry.is_symlink() or not (entry.is_dir(follow_symlinks=False)
                                               or entry.is_file(follow_symlinks=False))):
                folders.add(os.path.join(root, entry.name, assignment))
        return folders

    def init_destination(self, assignment_id, student_id):
        if student_id in (self.coursedir.student_id_exclude or "").split(","):
            return super().init_destination(assignment_id, student_id)  # skipped, unread
        with self._refusing(assignment_id, student_id):
            self._notebooks = gradebook_notebooks(self.coursedir.db_url,
                                                  self.coursedir.course_id, assignment_id)
            check_folder(self._submitted_root(), student_id, assignment_id, self.limits,
                         self._notebooks)
        return super().init_destination(assignment_id, student_id)

    def convert_single_notebook(self, notebook_filename):
        try:
            super().convert_single_notebook(notebook_filename)
        except SchemaMismatchError as error:
            # nbgrader stops every later student on this error (it means an instructor's
            # notebook needs `nbgrader update`); here it can only come from the submission.
            info = self.init_single_notebook_resources(notebook_filename)["nbgrader"]
            with self._refusing(info["assignment"], info["student"]):
                raise SubmissionRefused(
                    f"{info['notebook']}.ipynb has nbgrader metadata of schema version "
                    f"{error.actual_version!r}, not {error.expected_version}: its metadata "
                    "was edited") from None


class _LogRefusal:
    """Log a refusal as its one line, and raise it for nbgrader to count as a failure."""

    def __init__(self, converter, assignment_id, student_id):
        self.converter, self.assignment, self.student = converter, assignment_id, student_id

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is SubmissionRefused and not getattr(error, "logged", False):
            line = refusal_line(self.student, self.assignment, error)
            self.converter.log.error(line)
            refused = SubmissionRefused(line)
            refused.logged = True
            raise refused from None
        return False


def refusal_in_log(log, student, assignment):
    """The reason a refusal gave in nbgrader's captured log (``capture_log``), or None."""
    prefix = "[ERROR] " + refusal_line(student, assignment, "")
    for line in (log or "").splitlines():
        if line.startswith(prefix):
            return line[len(prefix):]
    return None


def use_checked_autograde():
    """Make ``nbgrader autograde`` and ``NbGraderAPI.autograde`` (the batch grader, the
    formgrader) grade with ``CheckedAutograde``; nbgrader_config.py calls this."""
    import nbgrader.apps.api
    import nbgrader.apps.autogradeapp
    nbgrader.apps.autogradeapp.Autograde = CheckedAutograde
    nbgrader.apps.api.Autograde = CheckedAutograde
