"""Sandboxed grading kernels: bubblewrap namespaces and cgroup limits around warm kernels.

Student code runs in the kernel, so during grading it would otherwise have the grader's
rights: write the gradebook, read source/ and other students' work, open connections.
Here each grading process (``nbgrader autograde``, or one worker of the batch grader)
starts one sandbox: ``bwrap`` runs the warm fork server of ``convcourse.warm`` as pid 1 of
its own pid, network, mount, IPC and user namespaces, and every kernel is forked inside it.

Inside the sandbox:
- the system (/usr, /etc), Python, the virtual environment and the ``convcourse`` package
  are read-only, and so are the sandbox's root and /dev; /tmp is private; the only other
  path is the sandbox's own directory, where the kernel's working directory is a copy of
  the submission's folder (a kernel sees no source/, release/, gradebook, other student
  or home directory);
- each kernel has a user, IPC and mount namespace of its own, with its own /dev/shm, and
  no capability (``isolate_kernel``): its shared memory and IPC objects die with it;
- there is no network, only a loopback of its own: the kernel talks to the grader over
  ZeroMQ IPC sockets in the sandbox's directory;
- a cgroup caps memory (``memory_limit`` beyond what the preloaded fork server holds) and
  the number of processes and threads (``max_processes``);
- before each kernel, the server kills every other process in the sandbox and empties
  every writable mount (``convcourse.warm._reset_sandbox``), the grader waits until the
  last kernels' shared memory is freed, and the submission's folder is copied afresh:
  nothing a kernel leaves behind reaches the next student. The server is pid 1 and not
  dumpable, so a kernel can neither signal nor trace it; the socket that asks it for
  kernels is not in the sandbox. Killing the grading process kills the whole sandbox.

``SandboxedProvisioner`` is the kernel provisioner of the kernelspec ``convcourse-sandbox``
(installed by ``python -m convcourse.warm install``) that nbgrader_config.py selects.
Where bubblewrap or the cgroups are missing, it refuses to start a kernel unless
``c.SandboxedProvisioner.allow_unsandboxed = True``: then kernels are warm but unconfined.
"""
import asyncio
import atexit
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from traitlets import Bool, Integer, Unicode

import convcourse
from convcourse import fs, warm

KERNEL_NAME = "convcourse-sandbox"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "convcourse"
log = logging.getLogger(__name__)
# A submission's folder is copied into the sandbox for each notebook: it must stay small.
MAX_SUBMISSION_BYTES = 200 * 2 ** 20
# Seconds the grader waits for the fork server to answer before it starts a new sandbox.
ANSWER_TIMEOUT = 60
# Shared memory the sandbox may hold after a reset beyond its server's at the start (the
# server's own small files in /tmp come and go), and kernel memory beyond the level after the
# last clean reset (caches grow a little with every kernel); more is reported as left.
SHMEM_SLACK = 16 * 2 ** 20
KERNEL_MEMORY_SLACK = 32 * 2 ** 20


def parse_bytes(text):
    """'2G' -> 2147483648; plain integers are bytes."""
    text = str(text).strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def unavailable_reason():
    """Why a sandbox cannot be built here, or None if it can."""
    if shutil.which("bwrap") is None:
        return ("bubblewrap (bwrap) is not installed: install it with "
                "`apt-get install bubblewrap` (`make test` and `make install-sandbox` do)")
    for controller in ("memory", "pids"):
        if not os.access(CGROUP_ROOT / controller, os.W_OK):
            return (f"the cgroup controller {CGROUP_ROOT / controller} is missing or not "
                    "writable (grading needs root on a cgroup v1 system)")
    return None


def readonly_paths():
    """What the sandbox shows read-only: system, Python, the venv, the course package."""
    paths = ["/usr", "/etc", sys.base_prefix, sys.prefix,
             str(Path(convcourse.__file__).resolve().parent)]
    return [p for p in dict.fromkeys(os.path.realpath(p) for p in paths) if os.path.exists(p)]


def bwrap_command(directory, listen_fd):
    """The bwrap command line that runs the fork server in a sandbox rooted at ``directory``."""
    command = ["bwrap", "--unshare-all", "--unshare-user", "--uid", "1000", "--gid", "1000",
               "--as-pid-1", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
               # First the private /tmp: mounts apply in order, and the venv, the package
               # or the sandbox's folder may well live under /tmp.
               "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for path in readonly_paths():
        command += ["--ro-bind", path, path]
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
    return command + [sys.executable, "-m", "convcourse.warm", "serve",
                      "--fd", str(listen_fd), "--sandboxed"]


def sandbox_environment():
    """The environment the server (and so every kernel) starts from: nothing of the grader's."""
    return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/tmp",
            "LANG": "C.UTF-8", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": "/tmp/.matplotlib", "IPYTHONDIR": "/tmp/.ipython",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


# ---- each kernel's own namespaces -----------------------------------------------------------

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x4000, 0x40000
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 4, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522


def isolate_kernel():
    """Give the calling process, a kernel just forked in the sandbox, namespaces of its own
    and no capability left, before any of ipykernel's or the student's code runs.

    - a user namespace that maps only the kernel's own uid and gid (it is needed to create
      the two below without privileges, inside bubblewrap or not, as root or not);
    - an IPC namespace: System V shared memory, semaphores and message queues and POSIX
      message queues are the kernel's (and its children's) only;
    - a mount namespace with a fresh tmpfs on /dev/shm.
    When the reset kills the kernel and its children, Linux frees these namespaces and all
    they hold, so no student can pin memory, or leave anything, for the next. The kernel and
    its children are the out-of-memory killer's first choice, not the server. Then every
    capability the new user namespace gave is dropped (bounding set, ambient, effective,
    permitted, inheritable) and no_new_privs is set. The kernel still talks to the grader
    over the ZeroMQ IPC sockets in the sandbox's folder: those are files, not IPC objects.
    Raises OSError if any step fails (the fork server then refuses to start kernels).
    """
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)

    def check(result, what):
        if result != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"{what}: {os.strerror(error)}")

    def prctl(*args):
        check(libc.prctl(*(list(args) + [0] * (5 - len(args)))), f"prctl{args}")

    uid, gid = os.geteuid(), os.getegid()
    # The fork server is not dumpable (kernels cannot trace it), and a kernel forked from it
    # inherits that: its /proc/self files would then belong to root, whom a sandbox run by
    # an ordinary user does not map, and it could not write its own uid map.
    prctl(PR_SET_DUMPABLE, 1)
    warm._first_to_go_when_memory_runs_out()
    check(libc.unshare(CLONE_NEWUSER | CLONE_NEWIPC | CLONE_NEWNS), "unshare")
    for name, line in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                       ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as out:
            out.write(line)
    check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    check(libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=1777"),
          "mount tmpfs /dev/shm")
    with open("/proc/sys/kernel/cap_last_cap") as last:
        for capability in range(int(last.read()) + 1):
            prctl(PR_CAPBSET_DROP, capability)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    check(libc.capset(ctypes.byref(Header(LINUX_CAPABILITY_VERSION_3, 0)), (Data * 2)()),
          "capset")
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_DUMPABLE, 0)
    with open("/proc/self/status") as status:
        kept = [line.split()[0] for line in status
                if line.startswith(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"))
                and int(line.split()[1], 16)]
    if kept:
        raise OSError(f"capabilities left: {', '.join(kept)}")


# ---- the grader's side -----------------------------------------------------------------------

def _empty(directory):
    """Remove everything in ``directory``, however deep, without following any symbolic
    link; raises RuntimeError if something stays."""
    left = fs.empty(directory)
    if left:
        raise RuntimeError(f"could not empty {directory}: {', '.join(left[:5])}")


# A submission's folder deeper than this is not copied into the sandbox (nor walked further).
MAX_SUBMISSION_DEPTH = 64


def _check_size(directory, limit):
    """Refuse a folder that holds more than ``limit`` bytes, or is too deep to copy.

    A loop of its own, not os.walk: that recurses, and a deep folder would raise
    RecursionError (a failure of this submission, but a confusing one)."""
    total, todo = 0, [(str(directory), 0)]
    while todo:
        folder, depth = todo.pop()
        if depth > MAX_SUBMISSION_DEPTH:
            raise RuntimeError(f"{directory} is more than {MAX_SUBMISSION_DEPTH} folders deep: "
                               "it is not copied into the sandbox")
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    todo.append((entry.path, depth + 1))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
        if total > limit:
            raise RuntimeError(f"{directory} holds more than {limit // 2 ** 20} MiB: it is not "
                               "copied into the sandbox")


def remove_stale_folders():
    """Remove the sandbox folders of grading processes that were killed before removing
    theirs (``convcourse-sandbox-<pid>-...`` in the temporary folder)."""
    fs.remove_stale("convcourse-sandbox-")


class Cgroup:
    """One cgroup (v1) per controller, /sys/fs/cgroup/<controller>/convcourse/<name>."""

    CONTROLLERS = ("memory", "pids")

    def __init__(self, name):
        self.paths = {c: CGROUP_ROOT / c / CGROUP_PARENT / name for c in self.CONTROLLERS}
        for path in self.paths.values():
            path.mkdir(parents=True, exist_ok=True)

    def write(self, controller, name, value):
        (self.paths[controller] / name).write_text(str(value))

    def read(self, controller, name):
        return int((self.paths[controller] / name).read_text())

    def processes(self):
        """The pids in the cgroup, as this process sees them."""
        pids = set()
        for path in self.paths.values():
            try:
                pids |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
            except FileNotFoundError:
                pass
        return pids

    def kill_all(self, timeout=10):
        """SIGKILL every process in the cgroup until none is left; whether none is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.processes()
            if not pids:
                return True
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        return not self.processes()

    def shmem(self):
        """Bytes of shared memory (tmpfs files, System V segments) charged to the cgroup."""
        for line in (self.paths["memory"] / "memory.stat").read_text().splitlines():
            name, value = line.split()
            if name == "shmem":
                return int(value)
        return 0

    def kernel_memory(self):
        """Bytes of kernel memory charged to the cgroup (0 where Linux does not count it)."""
        try:
            return self.read("memory", "memory.kmem.usage_in_bytes")
        except OSError:
            return 0

    def enter(self):
        """Move the calling process (and so its future children) into the cgroup."""
        for path in self.paths.values():
            (path / "cgroup.procs").write_text(str(os.getpid()))

    @classmethod
    def remove_stale(cls):
        """Remove the cgroups left by grading processes that were killed before removing
        theirs (named "<pid>-<random>"); one that still holds processes stays."""
        for controller in cls.CONTROLLERS:
            for path in (CGROUP_ROOT / controller / CGROUP_PARENT).glob("*-*"):
                owner = path.name.split("-")[0]
                if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
                    try:
                        path.rmdir()
                    except OSError:
                        pass

    def remove(self):
        for path in self.paths.values():
            for _ in range(50):  # the processes may take a moment to leave
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


class Sandbox:
    """The sandbox of this grading process, started on first use and stopped at exit."""

    _instance = None
    _lock = threading.Lock()
    last_replaced = None  # why the last sandbox was replaced, for logs and tests

    @classmethod
    def for_next_kernel(cls, memory_limit, max_processes):
        """This process's sandbox, emptied of the last kernel's processes and files in /tmp;
        a new sandbox if there is none, or the last one does not answer or stays dirty."""
        with cls._lock:
            trouble = cls._instance.reset() if cls._instance is not None else None
            if trouble:
                log.warning("Building a new sandbox: %s", trouble)
                cls.last_replaced = trouble
                cls._instance.stop()
                cls._instance = None
            if cls._instance is None:
                cls._instance = cls(memory_limit, max_processes)
            return cls._instance

    def __init__(self, memory_limit, max_processes):
        self.memory_limit = parse_bytes(memory_limit)
        remove_stale_folders()
        # Outside the sandbox: the socket that asks the server for kernels.
        self.control = Path(tempfile.mkdtemp(prefix=f"convcourse-sandbox-{os.getpid()}-control-"))
        # Inside: kernels' connection files, IPC sockets and working directory.
        self.directory = Path(tempfile.mkdtemp(prefix=f"convcourse-sandbox-{os.getpid()}-"))
        self.work = self.directory / "work"
        self.socket_path = str(self.control / "fork.sock")
        Cgroup.remove_stale()
        self.cgroup = Cgroup(f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.cgroup.write("pids", "pids.max", max_processes)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.socket_path)
        listener.listen(16)
        listener.set_inheritable(True)
        self.process = subprocess.Popen(
            bwrap_command(self.directory, listener.fileno()), pass_fds=[listener.fileno()],
            env=sandbox_environment(), stdin=subprocess.DEVNULL, preexec_fn=self.cgroup.enter)
        listener.close()
        atexit.register(self.stop)
        answer = self._request({"op": "ping"}, timeout=300)  # the server imports torch first
        if "error" in answer:
            self.stop()
            raise RuntimeError(f"Refusing to run student code: {answer['error']}")
        # The preloaded server's memory is charged to the cgroup: kernels get the limit on top.
        self.cgroup.write("memory", "memory.limit_in_bytes",
                          self.cgroup.read("memory", "memory.usage_in_bytes") + self.memory_limit)
        self.shmem_at_start = self.cgroup.shmem()
        self.kernel_memory_after_reset = self.cgroup.kernel_memory()

    def reset(self):
        """Kill every process in the sandbox but the server, empty every writable folder;
        what went wrong, or None if done (see ``convcourse.warm._reset_sandbox``)."""
        if self.process.poll() is not None:
            return f"its server exited with status {self.process.returncode}"
        try:
            answer = self._request({"op": "reset"})
        except (OSError, RuntimeError, ValueError) as error:
            return f"its server did not answer the reset ({type(error).__name__}: {error})"
        left = answer.get("left", []) if answer.get("reset") is True else \
            answer.get("left") or ["something"]
        left = left + self._memory_held()
        return f"the reset left {', '.join(left)}" if left else None

    def _memory_held(self, timeout=5):
        """The memory that the last kernels left charged to the sandbox, once Linux has
        freed their namespaces (it frees an IPC namespace, its System V segments and message
        queues, a moment after its last process: 0.1-0.6 s here), or after ``timeout``.

        Shared memory (tmpfs files, System V segments) is compared with the server's at the
        start; kernel memory (message queues, semaphores, and caches of file names that Linux
        reclaims when it needs) with the level after the last reset that left nothing."""
        deadline = time.monotonic() + timeout
        while True:
            shared, kernel = self.cgroup.shmem(), self.cgroup.kernel_memory()
            held = []
            if shared > self.shmem_at_start + SHMEM_SLACK:
                held.append(f"{(shared - self.shmem_at_start) / 2 ** 20:.0f} MiB of shared memory")
            if kernel > self.kernel_memory_after_reset + KERNEL_MEMORY_SLACK:
                held.append(f"{(kernel - self.kernel_memory_after_reset) / 2 ** 20:.0f} MiB of "
                            "kernel memory")
            if not held:
                self.kernel_memory_after_reset = kernel
                return []
            if time.monotonic() > deadline:
                return held
            time.sleep(0.005)

    def _request(self, request, timeout=ANSWER_TIMEOUT):
        return warm.ask(self.socket_path, request, timeout)

    def start_kernel(self, submission_dir, connection_info, env, arguments=()):
        """Fork a kernel that works on a copy of ``submission_dir``; its pid out here.

        ``arguments`` are ipykernel's command-line arguments other than the connection file
        (nbclient's ``--HistoryManager.hist_file=:memory:``, ``Execute.extra_arguments``)."""
        # The sandbox was reset (for_next_kernel): no process of the last kernel is left.
        # Nor is anything it left in the sandbox's folder, such as a symbolic link planted
        # where this process is about to write.
        _empty(self.directory)
        os.chmod(self.directory, 0o700)  # a kernel may have opened it to the host's users
        _check_size(submission_dir, MAX_SUBMISSION_BYTES)
        # Symbolic links are copied as links: they point into the sandbox's view, not ours.
        shutil.copytree(submission_dir, self.work, symlinks=True,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        connection_file = self.directory / "kernel.json"
        with open(connection_file, "x") as out:  # "x": a fresh file, never through a link
            out.write(json.dumps(
                {k: v.decode() if isinstance(v, bytes) else v for k, v in connection_info.items()}))
        inner_pid = self._request({"op": "fork",
                                   "args": ["-f", str(connection_file), *arguments],
                                   "cwd": str(self.work), "env": env})["pid"]
        return self.host_pid(inner_pid)

    def host_pid(self, inner_pid):
        """The pid, as this process sees it, of the sandbox's process ``inner_pid``."""
        import psutil
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                with open(f"/proc/{child.pid}/status") as status:
                    for line in status:
                        if line.startswith("NSpid:") and int(line.split()[-1]) == inner_pid:
                            return child.pid
            except (FileNotFoundError, ProcessLookupError):
                continue
        raise RuntimeError(f"the sandboxed kernel (pid {inner_pid} inside) is gone")

    def stop(self):
        """Kill the sandbox, wait until none of its processes is left, remove its folders."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        # bubblewrap's own child (the server, pid 1) and the kernels die with it, but a moment
        # later: none may write in the folders while they are removed.
        gone = self.cgroup.kill_all()
        self.cgroup.remove()
        left = fs.remove_tree(self.directory) + fs.remove_tree(self.control)
        if left or not gone:
            log.warning("Stopping a sandbox left %s", ", ".join(
                left + ([] if gone else [f"processes {sorted(self.cgroup.processes())}"])))


def _without_connection_file(arguments):
    """ipykernel's arguments without ``-f FILE``: the sandbox writes its own file."""
    kept, arguments = [], iter(arguments)
    for argument in arguments:
        if argument == "-f":
            next(arguments, None)
        elif not argument.startswith(("-f=", "--f=")):
            kept.append(argument)
    return kept


class SandboxedProvisioner(warm.WarmProvisioner):
    """Warm kernels forked inside this process's sandbox (see the module's docstring)."""

    memory_limit = Unicode(
        "2G", help="Memory a kernel may use (K/M/G suffixes), beyond the shared preloaded "
                   "modules.").tag(config=True)
    max_processes = Integer(
        512, help="Processes and threads in one sandbox (a kernel has about 20).").tag(config=True)
    allow_unsandboxed = Bool(
        False, help="Where no sandbox can be built, run kernels unconfined instead of "
                    "refusing to grade.").tag(config=True)

    def _sandboxed(self):
        reason = unavailable_reason()
        if reason is None:
            return True
        if not self.allow_unsandboxed:
            raise RuntimeError(
                f"Refusing to run student code without a sandbox: {reason}. To grade "
                "without one anyway (student code then runs with your rights), set "
                "c.SandboxedProvisioner.allow_unsandboxed = True in nbgrader_config.py.")
        self.log.warning("Grading WITHOUT a sandbox (allow_unsandboxed): %s", reason)
        return False

    async def pre_launch(self, **kwargs):
        self.sandbox = None
        if self._sandboxed():
            self.sandbox = Sandbox.for_next_kernel(self.memory_limit, self.max_processes)
            km = self.parent
            # ZeroMQ over IPC sockets in the sandbox's directory: the only way across.
            km.transport = "ipc"
            km.ip = str(self.sandbox.directory / "kernel-ipc")
        return await super().pre_launch(**kwargs)

    async def launch_kernel(self, cmd, **kwargs):
        if self.sandbox is None:
            return await super().launch_kernel(cmd, **kwargs)
        env = sandbox_environment()
        env.update({k: v for k, v in (kwargs.get("env") or {}).items()
                    if k.startswith(("JPY_", "NBGRADER_"))})
        cwd = str(kwargs.get("cwd") or os.getcwd())
        pid = await asyncio.get_running_loop().run_in_executor(
            None, self.sandbox.start_kernel, cwd, self.connection_info, env,
            _without_connection_file(warm.kernel_arguments(cmd)))
        self.process = warm.ForkedKernelProcess(pid)
        self.pid = self.pgid = pid
        self.cwd = cwd
        return self.connection_info


if __name__ == "__main__":
    reason = unavailable_reason()
    print(reason or "A sandbox can be built here.")
    sys.exit(1 if reason else 0)
