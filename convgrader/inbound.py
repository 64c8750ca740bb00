"""An exchange's inbound entry, walked as collect trusts it: whose it is, when, and what to copy.

``scan_entry`` walks an entry of the inbound folder without following any link (``lstat``,
then ``openat`` with ``O_NOFOLLOW``, each opened file or folder checked again by ``fstat``,
and each file's ctime read again after its bytes), and refuses (``SubmissionRefused``)
anything that is not the entry's owner's own regular files and folders on the inbound
folder's file system, or that is over the limits. Its ``Scan`` holds the newest inode change
time (ctime), which no student can set back, and, on the read pass, the bytes to copy.
``convgrader.collect.TrustedCollect`` chooses and copies submissions with it; why each rule
holds is in that module's docstring.
"""
import datetime
import os
import pwd
import stat
from dataclasses import dataclass, field
from typing import Callable

from dateutil.tz import gettz

from convgrader.submissions.folders import (OPEN_FILE, FileRead, MiB, SubmissionLimits,
                                            SubmissionRefused, folder_entries, open_folder,
                                            reading, refuse_past_limits, refuse_special,
                                            show)

# Whether to copy a file of this name and size, or (size None) a folder: collect's rules.
Copied = Callable[[str, int | None], bool]

def user_name(uid: int) -> str:
    """The name of user ``uid``, or "uid N" when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def user_id(name: str) -> int | None:
    """The uid of the user ``name``, or None."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def named_student(entry: str) -> str | None:
    """The student an inbound entry's name gives (nbgrader's ``_path_to_record``)."""
    parts = entry.rsplit("+", 3)
    return parts[0] if len(parts) >= 3 else None


def trusted_time(ctime_ns: int, timezone: str = "UTC") -> datetime.datetime:
    """The time ``ctime_ns`` (nanoseconds) as an aware datetime in ``timezone``, rounded up
    to the microsecond (never earlier than the kernel's time)."""
    micro = -(-ctime_ns // 1000)
    utc = (datetime.datetime.fromtimestamp(micro // 10 ** 6, datetime.timezone.utc)
           + datetime.timedelta(microseconds=micro % 10 ** 6))
    return utc.astimezone(gettz(timezone))


@dataclass
class Scan:
    """One inbound entry as walked: its newest ctime, and (read pass) what to copy."""
    uid: int
    owner: str
    dev: int  # the inbound folder's file system
    max_bytes: int
    limits: SubmissionLimits
    ctime_ns: int = 0
    entries: int = 0
    bytes: int = 0
    folders: list[str] = field(default_factory=list)  # relative paths, parents first
    files: list[FileRead] = field(default_factory=list)

    def seen(self, rel: str, st: os.stat_result) -> None:
        """Check that ``st`` (of ``rel``) is the student's, and count its time."""
        if st.st_dev != self.dev:  # a FUSE file system there says any owner and time
            raise SubmissionRefused(f"{show(rel)} is on another file system (a mount "
                                    "point): a submission may hold only regular files and "
                                    "folders")
        if st.st_uid != self.uid:
            raise SubmissionRefused(f"{show(rel)} belongs to {user_name(st.st_uid)}, not "
                                    f"{self.owner}: a submission holds only its student's "
                                    "own files")
        self.ctime_ns = max(self.ctime_ns, st.st_ctime_ns)

    def count(self, rel: str, size: int = 0) -> None:
        self.entries += 1
        self.bytes += size
        refuse_past_limits(self.entries, self.bytes, self.limits.max_entries, self.max_bytes,
                           rel, "it")


def _same(st: os.stat_result, other: os.stat_result) -> bool:
    return (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino)


def scan_entry(inbound_fd: int, entry: str, uid: int, limits: SubmissionLimits, max_bytes: int,
               copied: Copied | None = None) -> Scan:
    """Walk the inbound entry ``entry`` that should belong to ``uid``, never following a
    link; refuse (``SubmissionRefused``) what is not that user's, not a regular file or
    folder, or over the limits. ``copied(name, size)``, when given, says which files and
    folders to copy: their bytes are read (the read pass). Returns the ``Scan``."""
    state = Scan(uid, user_name(uid), os.fstat(inbound_fd).st_dev, max_bytes, limits)
    with reading():
        st = os.stat(entry, dir_fd=inbound_fd, follow_symlinks=False)
        state.seen("it", st)
        if stat.S_ISREG(st.st_mode):
            raise SubmissionRefused("it is a file, not a folder")
        if not stat.S_ISDIR(st.st_mode):
            refuse_special("it", st.st_mode, inbound_fd, entry)
        fd = open_folder(entry, inbound_fd, entry)
        try:
            _check_opened(state, "it", st, fd)
            _scan_folder(fd, state, "", 0, copied)
            state.seen("it", os.fstat(fd))  # after the walk: a change during it shows
        finally:
            os.close(fd)
    return state


def _check_opened(state: Scan, rel: str, st: os.stat_result, fd: int) -> os.stat_result:
    """The file or folder opened is the one ``lstat`` saw, and the student's."""
    opened = os.fstat(fd)
    if not _same(st, opened) or stat.S_IFMT(st.st_mode) != stat.S_IFMT(opened.st_mode):
        raise SubmissionRefused(f"{show(rel)} was replaced while it was collected")
    state.seen(rel, opened)
    return opened


def _scan_folder(dir_fd: int, state: Scan, rel: str, depth: int,
                 copied: Copied | None) -> None:
    for name in folder_entries(dir_fd, state.limits, rel):
        path = f"{rel}/{name}" if rel else name
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        state.seen(path, st)
        if stat.S_ISDIR(st.st_mode):
            state.count(path)
            if depth + 1 > state.limits.max_depth:
                raise SubmissionRefused(f"{show(path)} is nested {depth + 1} folders deep "
                                        f"({state.limits.max_depth} allowed)")
            copy = copied is not None and copied(name, None)
            if copy:
                state.folders.append(path)
            sub = open_folder(name, dir_fd, path)
            try:
                _check_opened(state, path, st, sub)
                _scan_folder(sub, state, path, depth + 1, copied if copy else None)
                state.seen(path, os.fstat(sub))
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode):
            state.count(path, st.st_size)
            if copied is not None and copied(name, st.st_size):
                data, mode = _read(dir_fd, name, path, st, state)
                state.files.append((path, data, mode))
        else:
            refuse_special(path, st.st_mode, dir_fd, name)


def _read(dir_fd: int, name: str, rel: str, st: os.stat_result,
          state: Scan) -> tuple[bytes, int]:
    """The bytes of a regular file, through a descriptor opened without following a link,
    at most what the byte limit has left."""
    fd = os.open(name, OPEN_FILE, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as f:
        _check_opened(state, rel, st, fd)
        left = state.max_bytes - sum(len(data) for _, data, _ in state.files)
        data = f.read(left + 1)
        if len(data) > left:
            raise SubmissionRefused(f"it holds more than {state.max_bytes / MiB:.1f} MiB "
                                    f"(stopped at {show(rel)})")
        after = os.fstat(fd)  # a write during the read changed the ctime
        state.seen(rel, after)
    return data, stat.S_IMODE(after.st_mode)
