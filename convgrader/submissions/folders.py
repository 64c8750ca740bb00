"""A submission folder read without following any link: the walk that autograde and collect share.

Every folder is opened from its parent's file descriptor with ``O_NOFOLLOW`` and every entry
is looked at with ``lstat`` before it is opened, so a link, a device, a FIFO or a socket is
refused (``SubmissionRefused``, one line) instead of followed, and a folder swapped for a
link between the look and the open is refused too. The walk counts bytes, entries and depth
against ``SubmissionLimits`` (``c.SubmissionLimits.<name>`` in nbgrader_config.py).
``convgrader.submissions.notebooks`` reads the notebooks of such a folder,
``convgrader.submissions.autograde`` copies the other files; ``convgrader.inbound`` walks an
exchange's inbound entry with the same pieces.
"""
import errno
import fnmatch
import glob
import os
import stat
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, NoReturn, overload

from traitlets import Integer
from traitlets.config import LoggingConfigurable

from convgrader.errors import SubmissionRefused

MiB = 2 ** 20
_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFIFO: "a named pipe (FIFO)",
          stat.S_IFSOCK: "a socket"}
OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
FileSize = tuple[str, int]  # a regular file of a submission: relative path, bytes
FileRead = tuple[str, bytes, int]  # one read: relative path, contents, mode


class SubmissionLimits(LoggingConfigurable):
    """How large a submission folder may be (``c.SubmissionLimits.<name>`` in the config)."""

    max_bytes = Integer(50 * MiB,
                        help="Bytes of all files in a submission folder.").tag(config=True)
    max_entries = Integer(200, help="Files and folders in a submission folder.").tag(config=True)
    max_depth = Integer(5, help="Folders nested in a submission folder.").tag(config=True)
    max_notebook_bytes = Integer(20 * MiB, help="Bytes of one notebook.").tag(config=True)


def refusal_line(student: str, assignment: str, reason: object) -> str:
    """The line a refusal is logged as, in nbgrader's log and the batch grader's."""
    return f"{student}/{assignment}: {reason}"


def show(name: str, limit: int = 80) -> str:
    """A file name as one printable line (control characters escaped), shortened."""
    text = name if name.isprintable() else repr(name)[1:-1]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def mib(size: int) -> str:
    return f"{size / MiB:.1f} MiB"


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "a special file")


def refuse_special(rel: str, mode: int, dir_fd: int, name: str) -> NoReturn:
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


def open_folder(name: str, dir_fd: int, rel: str) -> int:
    """Open folder ``name`` without following a link (one found now was swapped in)."""
    try:
        return os.open(name, OPEN_DIR, dir_fd=dir_fd)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
            if stat.S_ISREG(mode):
                raise SubmissionRefused(f"{show(rel)} changed from a folder to a file while "
                                        "the grader read it") from None
            refuse_special(rel, mode, dir_fd, name)
        raise


def open_submission(root: str, student: str, assignment: str) -> int:
    """A file descriptor of ``root/student/assignment``, opened folder by folder without
    following any link: each folder is checked as it is opened, so none can be swapped."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    rel = os.path.basename(os.path.normpath(root))
    for name in (student, assignment):
        rel = f"{rel}/{name}"
        try:  # the parent is closed whether its child is refused or opened
            try:
                mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            except FileNotFoundError:
                raise SubmissionRefused(f"{show(rel)} does not exist") from None
            if stat.S_ISLNK(mode):
                refuse_special(rel, mode, fd, name)
            if stat.S_ISREG(mode):
                raise SubmissionRefused(f"{show(rel)} is a file, not a folder")
            if not stat.S_ISDIR(mode):
                raise SubmissionRefused(f"{show(rel)} is {_kind(mode)}, not a folder")
            child = open_folder(name, fd, rel)
        finally:
            os.close(fd)
        fd = child
    return fd


@dataclass
class _Walk:
    limits: SubmissionLimits
    entries: int = 0
    bytes: int = 0
    files: list[FileSize] = field(default_factory=list)  # the regular files
    contents: list[FileRead] = field(default_factory=list)  # those read
    read: int = 0

    def count(self, rel: str, size: int = 0) -> None:
        self.entries += 1
        self.bytes += size
        refuse_past_limits(self.entries, self.bytes, self.limits.max_entries,
                           self.limits.max_bytes, rel, "the folder")


def refuse_past_limits(entries: int, size: int, max_entries: int, max_bytes: int, rel: str,
                       subject: str) -> None:
    """Refuse a submission (``subject``: "the folder", "it") once a walk that stopped at
    ``rel`` has counted more entries or bytes than its limits."""
    if entries > max_entries:
        raise SubmissionRefused(f"{subject} holds more than {max_entries} files and folders "
                                f"(stopped at {show(rel)})")
    if size > max_bytes:
        raise SubmissionRefused(f"{subject} holds more than {mib(max_bytes)} "
                                f"(stopped at {show(rel)})")


def folder_entries(dir_fd: int, limits: SubmissionLimits, rel: str) -> list[str]:
    """The names in a folder, sorted; refused beyond ``limits.max_entries``."""
    names = []
    with os.scandir(dir_fd) as it:
        for entry in it:
            names.append(entry.name)
            if len(names) > limits.max_entries:
                raise SubmissionRefused(f"the folder holds more than {limits.max_entries} "
                                        f"files and folders (in {show(rel or '.')})")
    return sorted(names)


@overload
def walk(dir_fd: int, limits: SubmissionLimits, copy_ignoring: None = None) -> list[FileSize]:
    ...


@overload
def walk(dir_fd: int, limits: SubmissionLimits, copy_ignoring: list[str]) -> list[FileRead]:
    ...


def walk(dir_fd: int, limits: SubmissionLimits,
         copy_ignoring: list[str] | None = None) -> list[FileSize] | list[FileRead]:
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

    def __enter__(self) -> "reading":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        if isinstance(error, OSError):
            where = (f" ({show(os.path.basename(error.filename))})"
                     if isinstance(error.filename, str) else "")
            raise SubmissionRefused(f"the folder could not be read: "
                                    f"{error.strerror or error}{where}") from None
        return False


def _walk(dir_fd: int, state: _Walk, ignore: list[str] | None, rel: str, depth: int) -> None:
    limits = state.limits
    for name in folder_entries(dir_fd, limits, rel):
        path = f"{rel}/{name}" if rel else name
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            state.count(path)
            if depth + 1 > limits.max_depth:
                raise SubmissionRefused(f"{show(path)} is nested {depth + 1} folders deep "
                                        f"({limits.max_depth} allowed)")
            sub = open_folder(name, dir_fd, path)
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
                                     f"{mib(limits.max_bytes)}")
                state.read += len(data)
                state.contents.append((path, data, st.st_mode))
        else:
            refuse_special(path, st.st_mode, dir_fd, name)


def matches(name: str, pattern: str) -> bool:
    """Whether glob's ``pattern`` matches the file name ``name`` (a wildcard does not match
    a leading dot)."""
    if not glob.has_magic(pattern):
        return name == pattern
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def is_ignored(name: str, patterns: list[str]) -> bool:
    """Whether nbgrader's ``utils.is_ignored`` (glob patterns matched against a file's own
    name) leaves ``name`` out."""
    return any(matches(name, pattern) for pattern in patterns)


def read_file(dir_fd: int, name: str, rel: str, limit: int,
              over: str) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file, opened without following a link; refused beyond
    ``limit`` bytes, with ``over`` saying which limit."""
    try:
        fd = os.open(name, OPEN_FILE, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            refuse_special(rel, os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode,
                            dir_fd, name)
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            refuse_special(rel, st.st_mode, dir_fd, name)
        # The size first, then at most one byte more than the limit: the file may grow.
        if st.st_size > limit or len(data := f.read(limit + 1)) > limit:
            raise SubmissionRefused(f"{show(rel)} is over {mib(limit)}: {over}")
    return data, st

