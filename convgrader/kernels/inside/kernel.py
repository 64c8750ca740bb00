"""A kernel forked by the fork server, becoming itself: its own namespaces and limits, then
ipykernel's kernel app. Runs in the forked child, before any of ipykernel's or the student's
code."""
import ctypes
import os
import resource
import signal
import socket
from collections.abc import Callable
from typing import Any, NoReturn


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x4000, 0x40000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _check(result: int, what: str) -> None:
    """Raise OSError, with errno's words, if a libc call failed."""
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl({option}, {value})")


def die_with(parent: int) -> None:
    """Get SIGKILL when ``parent`` (this process's parent, by pid) dies: a kernel with its
    fork server, the server with its grading process (bubblewrap's --die-with-parent does
    this for a sandboxed server, and a sandbox's kernels die with its pid namespace).

    If the parent died before the call, the signal will never come: exit now instead."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def first_to_go_when_memory_runs_out() -> None:
    """Make this process (a kernel, and what it starts) the first that the out-of-memory
    killer picks, before its fork server: a sandbox's server is its pid 1, and the whole
    sandbox would go with it. Raising one's own score needs no privilege; lowering it does."""
    with open("/proc/self/oom_score_adj", "w") as score:
        score.write("1000")


def protect_from_kernels() -> None:
    """Not dumpable: kernels (same user) cannot trace this process or read its memory."""
    _prctl(PR_SET_DUMPABLE, 0)


def isolate_kernel(shm_size: int | None = None) -> None:
    """Give the calling process, a kernel just forked in the sandbox, namespaces of its own
    and no capability left, before any of ipykernel's or the student's code runs.

    - a user namespace that maps only the kernel's own uid and gid (it is needed to create
      the two below without privileges, inside bubblewrap or not, as root or not);
    - an IPC namespace: System V shared memory, semaphores and message queues and POSIX
      message queues are the kernel's (and its children's) only;
    - a mount namespace with a fresh tmpfs on /dev/shm (of ``shm_size`` bytes at most, where
      no cgroup charges what it holds).
    When the reset kills the kernel and its children, Linux frees these namespaces and all
    they hold, so no student can pin memory, or leave anything, for the next. The kernel and
    its children are the out-of-memory killer's first choice, not the server. Then every
    capability the new user namespace gave is dropped (bounding set, ambient, effective,
    permitted, inheritable) and no_new_privs is set. The kernel still talks to the grader
    over the ZeroMQ IPC sockets in the sandbox's folder: those are files, not IPC objects.
    Raises OSError if any step fails (the fork server then refuses to start kernels).
    """
    uid, gid = os.geteuid(), os.getegid()
    # The fork server is not dumpable (kernels cannot trace it), and a kernel forked from it
    # inherits that: its /proc/self files would then belong to root, whom a sandbox run by
    # an ordinary user does not map, and it could not write its own uid map.
    _prctl(PR_SET_DUMPABLE, 1)
    first_to_go_when_memory_runs_out()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWIPC | CLONE_NEWNS), "unshare")
    for name, line in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                       ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as out:
            out.write(line)
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    options = "mode=1777" + (f",size={shm_size}" if shm_size else "")
    _check(_libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV, options.encode()),
          "mount tmpfs /dev/shm")
    with open("/proc/sys/kernel/cap_last_cap") as last:
        for capability in range(int(last.read()) + 1):
            _prctl(PR_CAPBSET_DROP, capability)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _check(_libc.capset(ctypes.byref(Header(LINUX_CAPABILITY_VERSION_3, 0)), (Data * 2)()),
          "capset")
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    with open("/proc/self/status") as status:
        kept = [line.split()[0] for line in status
                if line.startswith(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"))
                and int(line.split()[1], 16)]
    if kept:
        raise OSError(f"capabilities left: {', '.join(kept)}")


def apply_kernel_rlimits(limits: dict[str, int]) -> None:
    """In a kernel just forked: set ``limits`` (from ``Limits.kernel_rlimits``) on itself,
    soft and hard alike, so that it cannot raise them again. "AS" is what it may add to
    the address space it shares with the fork server now."""
    for name, value in limits.items():
        if name == "AS":
            value += _vm_size()
        resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (value, value))
    if "FSIZE" in limits:  # a write past it fails with EFBIG instead of killing the kernel
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _vm_size() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")


def become_kernel(request: dict[str, Any], connection: socket.socket, server: int,
                  isolate: Callable[[int | None], None] | None = None) -> NoReturn:
    """In the forked child: take the kernel's environment and run ipykernel's kernel app.

    It dies with its fork server (``server``, by pid); in a sandbox, ``isolate`` first gives
    it namespaces of its own. Once its sockets are bound it says so on ``connection``: a
    client that connects only then does not wait out ZeroMQ's reconnect interval.
    """
    try:
        die_with(server)
        if isolate is not None:
            isolate(request.get("shm_size"))
            die_with(server)  # again: a change of credentials may clear it
            apply_kernel_rlimits(request.get("rlimits") or {})
        else:
            first_to_go_when_memory_runs_out()
        os.setsid()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        # Not at the top: the server imports it after setting OMP_NUM_THREADS (PRELOAD), so
        # here it is only looked up.
        from ipykernel.kernelapp import IPKernelApp
        app = IPKernelApp.instance()
        app.initialize(request["args"])
        try:
            connection.sendall(b'{"ready": true}\n')
        finally:
            connection.close()
        app.start()
    finally:
        os._exit(0)

