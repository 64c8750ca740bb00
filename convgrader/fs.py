"""Removing the file trees that student code leaves, however deep, odd or locked they are.

A kernel may leave a folder tree thousands of levels deep: its paths exceed PATH_MAX, and
Python's recursive ``shutil.rmtree`` and ``os.walk`` raise RecursionError on it. Here every
operation is relative to an open directory descriptor (no path is ever longer than one
name), the walk is a loop with its own stack, at most ``MAX_OPEN`` directory descriptors
are open at once (the others are reopened through ".." on the way back, and checked to be
the same directory), symbolic links are removed, never followed, another file system
mounted below is never entered, and a folder whose permissions were taken away is made
writable again (its owner may do that; root needs not).
"""
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterable

MAX_OPEN = 16
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_ONLY = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OWNER_ALL = stat.S_IRWXU


class _Folder:
    """A directory on the walk's stack."""

    __slots__ = ("fd", "name", "dev", "ino", "names", "path", "kept", "relisted")

    def __init__(self, fd: int, name: str, st: os.stat_result, path: str | None):
        # None once closed to stay under MAX_OPEN descriptors (reopened from a child).
        self.fd: int | None = fd
        self.name, self.dev, self.ino = name, st.st_dev, st.st_ino
        self.names = os.listdir(fd)
        self.path = path  # its absolute path while it leads to a kept path, else None
        self.kept = False  # holds something that stays: it stays too
        self.relisted = 0

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _open_folder(name: str, dir_fd: int | None, st: os.stat_result) -> int:
    """Open the directory ``name`` (never through a link), owner-writable; its descriptor."""
    if st.st_mode & _OWNER_ALL != _OWNER_ALL and st.st_uid == os.geteuid():
        # Taken away by a kernel (its owner, as we are here): give them back first.
        handle = os.open(name, _PATH_ONLY, dir_fd=dir_fd)
        try:
            if (os.fstat(handle).st_dev, os.fstat(handle).st_ino) != (st.st_dev, st.st_ino):
                raise OSError(errno.ESTALE, "changed while being removed", name)
            os.chmod(f"/proc/self/fd/{handle}", stat.S_IMODE(st.st_mode) | _OWNER_ALL)
        finally:
            os.close(handle)
    fd = os.open(name, _DIRECTORY, dir_fd=dir_fd)
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise OSError(errno.ESTALE, "changed while being removed", name)
    return fd


def _parents(path: str) -> set[str]:
    parents: set[str] = set()
    while True:
        parent = os.path.dirname(path)
        if parent == path:
            return parents
        parents.add(parent)
        path = parent


def _shown(stack: list[_Folder], name: str | None = None) -> str:
    """A path of the walk, for reports (long ones cut in the middle)."""
    names = [f.name for f in stack] + ([name] if name is not None else [])
    path = "/".join(names)
    return path if len(path) <= 300 else f"{path[:150]}/…({len(names)} levels)…/{path[-100:]}"


def empty(path: Path | str, keep: Iterable[Path | str] = ()) -> list[str]:
    """Remove everything inside the directory ``path`` but the paths in ``keep`` (absolute)
    and the folders that lead to them (emptied of all else), and other file systems mounted
    below (their mount points stay). Returns the paths that could not be removed."""
    path = os.path.abspath(path)
    kept = {os.path.normpath(k) for k in map(str, keep)}
    leading: set[str] = set().union(*(_parents(k) for k in kept))
    st = os.lstat(path)
    top = _Folder(_open_folder(path, None, st), path, st, path)
    stack = [top]
    left: list[str] = []
    try:
        _walk(stack, kept, leading, left)
    finally:
        for folder in stack:
            folder.close()
    return left


def remove_tree(path: Path | str) -> list[str]:
    """Remove ``path`` and everything under it, as :func:`empty` does; what is left."""
    path = os.path.abspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return []
    try:
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(path)
            return []
        left = empty(path)
        if not left:
            os.rmdir(path)
    except FileNotFoundError:
        return []
    except OSError as error:
        return [f"{path} ({error.strerror})"]
    return left


def _walk(stack: list[_Folder], keep: set[str], leading: set[str], left: list[str]) -> None:
    open_from = 0  # stack[i].fd is open for every i >= open_from
    while stack:
        folder = stack[-1]
        if folder.names:
            name = folder.names.pop()
            here = f"{folder.path}/{name}" if folder.path is not None else None
            if here in keep:
                folder.kept = True
                continue
            try:
                st = os.stat(name, dir_fd=folder.fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            try:
                if not stat.S_ISDIR(st.st_mode):
                    os.unlink(name, dir_fd=folder.fd)
                    continue
                if st.st_dev != folder.dev:  # another file system is mounted here
                    raise OSError(errno.EBUSY, "a mount point")
                if here not in leading:
                    try:
                        os.rmdir(name, dir_fd=folder.fd)  # most folders are empty
                        continue
                    except OSError:
                        pass
                child = _Folder(_open_folder(name, folder.fd, st), name, st,
                                here if here in leading else None)
            except FileNotFoundError:
                continue
            except OSError as error:
                folder.kept = True
                left.append(f"{_shown(stack, name)} ({error.strerror or error})")
                continue
            stack.append(child)
            if len(stack) - open_from > MAX_OPEN:
                stack[open_from].close()
                open_from += 1
            continue
        # Every entry of ``folder`` was seen: remove it from its parent, unless it keeps some.
        if len(stack) == 1:
            if not folder.kept and os.listdir(folder.fd) and folder.relisted < 3:
                folder.relisted += 1  # written to meanwhile: once more
                folder.names = os.listdir(folder.fd)
                continue
            return
        parent = stack[-2]
        if parent.fd is None:
            parent.fd = os.open("..", _DIRECTORY, dir_fd=folder.fd)
            opened = os.fstat(parent.fd)
            if (opened.st_dev, opened.st_ino) != (parent.dev, parent.ino):
                raise OSError(errno.ESTALE, "a folder moved while being removed",
                              _shown(stack[:-1]))
            open_from = len(stack) - 2
        if not folder.kept:
            try:
                os.rmdir(folder.name, dir_fd=parent.fd)
            except OSError as error:
                if error.errno == errno.ENOTEMPTY and folder.relisted < 3:
                    folder.relisted += 1  # written to meanwhile: once more
                    folder.names = os.listdir(folder.fd)
                    continue
                if error.errno != errno.ENOENT:
                    folder.kept = True
                    left.append(f"{_shown(stack)} ({error.strerror})")
        folder.close()
        stack.pop()
        parent.kept = parent.kept or folder.kept


def leftovers(path: Path | str, keep: Iterable[Path | str] = ()) -> list[str]:
    """What is in the directory ``path`` besides the paths in ``keep`` and the folders
    leading to them: what :func:`empty` should have removed."""
    path = os.path.abspath(path)
    kept = {os.path.normpath(k) for k in map(str, keep)}
    leading: set[str] = set().union(*(_parents(k) for k in kept))
    found: list[str] = []
    todo = [path]
    while todo:
        folder = todo.pop()
        try:
            names = os.listdir(folder)
        except OSError as error:
            found.append(f"{folder} ({error.strerror})")
            continue
        for name in sorted(names):
            entry = os.path.join(folder, name)
            if entry in leading:
                todo.append(entry)
            elif entry not in kept:
                found.append(entry)
    return found


def owner_is_gone(name: str) -> bool:
    """Whether ``name`` ("<pid>-...", a grading process's folder or cgroup) belongs to a
    process that no longer runs."""
    owner = name.split("-")[0]
    return owner.isdigit() and not os.path.exists(f"/proc/{owner}")


def remove_stale(prefix: str) -> None:
    """Remove the folders ``<prefix><pid>-...`` in the temporary folder whose process is
    gone: those of grading processes killed before they could remove their own."""
    for path in Path(tempfile.gettempdir()).glob(f"{prefix}*-*"):
        if owner_is_gone(path.name[len(prefix):]):
            remove_tree(path)


def give_tree(top: Path | str, uid: int, gid: int) -> None:
    """Make ``top`` and everything under it (just copied by root) belong to ``uid``:``gid``,
    links included, never following one. os.walk recurses: only for trees of bounded depth
    (the course's own, or a submission's copy whose depth the sandbox checked)."""
    os.chown(top, uid, gid, follow_symlinks=False)
    for folder, folders, files in os.walk(top):
        for name in folders + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)
