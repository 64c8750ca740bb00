"""The sandbox's walls: bubblewrap's command line, what it shows, and who the kernel is.

The grader's side of ``convgrader.kernels.sandbox``, which starts bubblewrap with
``bwrap_command`` as the identity ``host_identity`` gives. See that module's docstring for
what the sandbox holds, and README's "What the autograder guarantees".
"""
import functools
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import convcourse
import convgrader
from convgrader.errors import SandboxUnavailable


def unavailable_reason() -> str | None:
    """Why a sandbox cannot be built here, or None if it can."""
    if shutil.which("bwrap") is None:
        return ("bubblewrap (bwrap) is not installed: ask the machine's administrator for it "
                "(`apt-get install bubblewrap`; `make test` installs it when run as root)")
    refusal = _namespaces_refused()
    if refusal:
        return (f"bubblewrap cannot create user namespaces here ({refusal}). Run the grader "
                "where unprivileged user namespaces are allowed: a host or a VM, not a "
                "container under the default seccomp profile (or start the container with "
                "one that allows unshare); on Ubuntu 24.04 and later, an AppArmor profile "
                "for bwrap or the sysctl kernel.apparmor_restrict_unprivileged_userns=0")
    return None


@functools.cache
def _namespaces_refused() -> str | None:
    """What bubblewrap said when it could not make a sandbox's namespaces; None if it can."""
    try:
        result = subprocess.run(
            ["bwrap", "--unshare-all", "--unshare-user", "--ro-bind", "/", "/", "true"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if result.returncode == 0:
        return None
    said = result.stderr.strip().splitlines()
    return said[-1] if said else f"exit status {result.returncode}"


def package_folders() -> list[Path]:
    """The folders of the course's two packages as this process imported them (a copy of
    the course imports its own): ``convcourse``, which the notebooks import, and
    ``convgrader``, whose fork server and ``calls`` run in the sandbox."""
    # Both are regular packages, whose ``__file__`` typeshed allows to be None.
    return [Path(package.__file__).resolve().parent  # type: ignore[arg-type]
            for package in (convcourse, convgrader)]


def sandbox_python() -> str:
    """The venv's interpreter by a path the sandbox shows: its folder resolved (a venv
    reached through a symbolic link is mounted at its real path), its name kept (the name
    in the venv's bin/, which is how Python finds the venv)."""
    executable = Path(sys.executable)
    return str(Path(os.path.realpath(executable.parent)) / executable.name)


# As root, the sandbox runs as this account, never as root: bubblewrap maps the kernel's uid
# to the identity it runs with, so a root grader would hand student code the host's root
# (/etc/shadow, /proc/sys). `make install` (as root) creates it: a system account, no login.
KERNEL_ACCOUNT = "convcourse-kernel"
# The kernel's uid and gid inside the sandbox, and its only user in the sandbox's /etc/passwd.
INSIDE_ID = 1000


def host_identity() -> tuple[int, int]:
    """(uid, gid) that the sandbox, and so every kernel, has on the host: the grader's own
    for an ordinary user, ``KERNEL_ACCOUNT``'s when the grader is root."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    try:
        account = pwd.getpwnam(KERNEL_ACCOUNT)
    except KeyError:
        raise SandboxUnavailable(
            f"Refusing to run student code as root: as root, the grading sandbox runs as the "
            f"account {KERNEL_ACCOUNT}, which does not exist here",
            f"Create it once with `make install` as root, or `useradd --system --user-group "
            f"--no-create-home --shell /usr/sbin/nologin {KERNEL_ACCOUNT}`.") from None
    if account.pw_uid == 0 or account.pw_gid == 0:
        raise SandboxUnavailable(f"Refusing to run student code: {KERNEL_ACCOUNT} has uid or "
                                 "gid 0", f"Give {KERNEL_ACCOUNT} an unprivileged uid and gid.")
    return account.pw_uid, account.pw_gid


def run_as(uid: int, gid: int) -> None:
    """For the sandbox's first process (before it runs bubblewrap, after it joined the
    limits): become ``uid``:``gid`` with no supplementary group, if not already."""
    if (os.geteuid(), os.getegid()) == (uid, gid):
        return
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


# What the sandbox shows of /etc: what the dynamic linker, Python (Debian's sitecustomize),
# matplotlib's fonts and time zones need. No shadow, gshadow, keys, certificates or the
# host's accounts: /etc/passwd and /etc/group are the sandbox's own (``ETC_WRITTEN``).
ETC_SHOWN = ["ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone",
             "nsswitch.conf", "host.conf", "hosts", "mime.types", "fonts", "alternatives",
             "os-release", "python3", f"python{sys.version_info.major}.{sys.version_info.minor}"]
ETC_WRITTEN = {
    "passwd": f"root:x:0:0:root:/:/usr/sbin/nologin\n"
              f"student:x:{INSIDE_ID}:{INSIDE_ID}:student:/tmp:/usr/sbin/nologin\n"
              "nobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n",
    "group": f"root:x:0:\nstudent:x:{INSIDE_ID}:\nnogroup:x:65534:\n",
}


def readonly_paths() -> list[str]:
    """What the sandbox shows read-only: system, Python, the venv, the course package (and
    of /etc, ``ETC_SHOWN``)."""
    paths = ["/usr", *(f"/etc/{name}" for name in ETC_SHOWN), sys.base_prefix, sys.prefix,
             *map(str, package_folders())]
    return [p for p in dict.fromkeys(os.path.realpath(p) if not p.startswith("/etc/") else p
                                     for p in paths) if os.path.exists(p)]


def data_fd(text: str) -> int:
    """A pipe's read end holding ``text`` (for bubblewrap's --ro-bind-data)."""
    read, write = os.pipe()
    os.write(write, text.encode())
    os.close(write)
    return read


def bwrap_command(directory: Path | str, listen_fd: int, tmp_size: int | None = None,
                  etc_fds: dict[str, int] | None = None) -> list[str]:
    """The bwrap command line that runs the fork server in a sandbox rooted at ``directory``
    (``tmp_size``: bytes of its /tmp, unbounded if None; ``etc_fds``: {name: fd} of the
    files written in /etc, each a pipe holding ``ETC_WRITTEN[name]``)."""
    command = ["bwrap", "--unshare-all", "--unshare-user", "--uid", str(INSIDE_ID),
               "--gid", str(INSIDE_ID), "--as-pid-1", "--die-with-parent", "--new-session",
               "--cap-drop", "ALL", "--proc", "/proc", "--dev", "/dev"]
    # Sysctls read-only, whoever runs the grader: bubblewrap covers /proc/sys only when it
    # can write there (as root), and some sysctls belong to the sandbox's own namespaces
    # (ns_last_pid, pid_max). No /sys at all.
    command += ["--ro-bind", "/proc/sys", "/proc/sys"]
    # First the private /tmp: mounts apply in order, and the venv, the package or the
    # sandbox's folder may well live under /tmp.
    if tmp_size is not None:
        command += ["--size", str(tmp_size)]
    command += ["--tmpfs", "/tmp"]
    for path in readonly_paths():
        command += ["--ro-bind", path, path]
    for name, fd in (etc_fds or {}).items():
        command += ["--ro-bind-data", str(fd), f"/etc/{name}"]
    for name in ("lib", "lib64", "bin", "sbin"):  # merged-/usr symlinks, or real folders
        host = Path("/", name)
        if host.is_symlink():
            command += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            command += ["--ro-bind", str(host), str(host)]
    command += ["--bind", str(directory), str(directory), "--chdir", str(directory)]
    # Last, the sandbox's root and /dev (tmpfs that bubblewrap made to hold the mount points
    # and devices) become read-only: what stays writable is /tmp and the sandbox's folder,
    # which the reset empties, and each kernel's own /dev/shm (isolate_kernel).
    command += ["--remount-ro", "/dev", "--remount-ro", "/"]
    return command + [sandbox_python(), "-m", "convgrader.kernels.inside.server", "serve",
                      "--fd", str(listen_fd), "--sandboxed"]


def sandbox_environment() -> dict[str, str]:
    """The environment the server (and so every kernel) starts from: nothing of the grader's."""
    # PYTHONPATH: the packages' folders are all the sandbox shows of the course root, and
    # Python's path comes before the venv's editable install (which may name another copy).
    return {"PATH": f"{Path(sandbox_python()).parent}:/usr/bin:/bin", "HOME": "/tmp",
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(str(f.parent) for f in package_folders())),
            "LANG": "C.UTF-8", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": "/tmp/.matplotlib", "IPYTHONDIR": "/tmp/.ipython",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
