"""The reset between two kernels of a sandbox: every process but the fork server killed,
every writable folder emptied, and what could not be cleared reported."""
import os
import re
import signal
import stat
import time

from convgrader import fs
from convgrader.errors import KernelServerError


def reset_sandbox(expected_mounts: set[str]) -> list[str]:
    """Kill every process of the sandbox but this one (pid 1) and empty every writable
    folder; what is left (processes, paths, System V IPC objects, mounts moved away from
    ``expected_mounts``, the mount points at the start), nothing if done.

    The writable folders are not a list: they are every file system mounted read-write in
    the sandbox (from /proc/self/mountinfo), but /proc and terminals. A mount added to the
    sandbox is emptied too. Each kernel has its own IPC namespace and /dev/shm (see
    ``kernel.isolate_kernel``): they went with its processes, and the check of
    /proc/sysvipc here shows that none was made in the sandbox's own. A kernel cannot mount
    or unmount here, but it may rename the folders that lead to a mount in /tmp (a venv or
    course under /tmp): the mount moves with them, so the mount points are checked too.
    """
    if os.getpid() != 1:  # kill(-1) outside a pid namespace would kill everything we own
        raise KernelServerError("reset outside a sandbox's pid namespace")
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass
    # Killed processes go at once, unless they are many and the memory limit is full (a
    # fork bomb): then they take seconds to leave the memory reclaim they are stuck in.
    deadline = time.monotonic() + KILL_TIMEOUT
    while time.monotonic() < deadline and _other_processes():
        time.sleep(0.01)
    left = [_describe_process(pid) for pid in _other_processes()]

    # The grader's mounts (the sandbox's own folder, and the venv or the package when they
    # live under /tmp) stay, and so do the folders on the way to them.
    mounts = _mounts()
    keep = {point for point, _, _ in mounts} | {os.getcwd()}
    for folder in _writable_folders(mounts):
        try:
            fs.empty(folder, keep)
        except OSError as error:
            left.append(f"{folder} ({error})")
        left += fs.leftovers(folder, keep)
    now = mount_points()
    if now != expected_mounts:
        left.append(f"the sandbox's mounts changed (gone: {sorted(expected_mounts - now)}, "
                    f"new: {sorted(now - expected_mounts)})")
    return left + _ipc_objects()


# Seconds the reset waits for the processes it killed to be gone.
KILL_TIMEOUT = 30
# File systems whose entries belong to processes or terminals: nothing to empty there.
NOT_STORAGE = {"proc", "sysfs", "devpts"}


def _mounts() -> list[tuple[str, str, bool]]:
    """(mount point, file system type, writable) of each mount in this mount namespace."""
    def unescape(field: str) -> str:
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)

    mounts: list[tuple[str, str, bool]] = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            tail = fields[fields.index("-") + 1:]  # type, source, super block options
            writable = "rw" in fields[5].split(",") and "rw" in tail[2].split(",")
            mounts.append((unescape(fields[4]), tail[0], writable))
    return mounts


def mount_points() -> set[str]:
    """The mount points of this process's mount namespace."""
    return {point for point, _, _ in _mounts()}


def _writable_folders(mounts: list[tuple[str, str, bool]]) -> list[str]:
    """Every folder a kernel could have written to: the read-write mounts that hold files.
    Each is emptied on its own (emptying /tmp keeps the mount points in it)."""
    folders = []
    for point, kind, writable in mounts:
        try:
            is_folder = stat.S_ISDIR(os.lstat(point).st_mode)
        except OSError:
            continue
        if writable and kind not in NOT_STORAGE and is_folder:
            folders.append(point)
    return sorted(set(folders))


def _ipc_objects() -> list[str]:
    """The System V IPC objects of this IPC namespace, one description each."""
    found = []
    for kind, name in (("shared memory segment", "shm"), ("semaphore set", "sem"),
                       ("message queue", "msg")):
        try:
            with open(f"/proc/sysvipc/{name}") as table:
                rows = table.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        found += [f"System V {kind} (key {int(row.split()[0]) & 0xffffffff:#x}, "
                  f"id {row.split()[1]})" for row in rows if row.strip()]
    return found


def _describe_process(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:  # "pid (name) state ..."
            name, rest = stat.read().split(" (", 1)[1].rsplit(") ", 1)
        return f"process {pid} ({name}, state {rest.split()[0]})"
    except (OSError, IndexError, ValueError):
        return f"process {pid}"


def _other_processes() -> list[str]:
    return [p for p in os.listdir("/proc") if p.isdigit() and p != str(os.getpid())]


