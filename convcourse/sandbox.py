"""Sandboxed grading kernels: bubblewrap namespaces and cgroup limits around warm kernels.

Student code runs in the kernel, so during grading it would otherwise have the grader's
rights: write the gradebook, read source/ and other students' work, open connections.
Here each grading process (``nbgrader autograde``, or one worker of the batch grader)
starts one sandbox: ``bwrap`` runs the warm fork server of ``convcourse.warm`` as pid 1 of
its own pid, network, mount, IPC and user namespaces, and every kernel is forked inside it.

Inside the sandbox:
- the system (/usr, /etc), Python, the virtual environment and the ``convcourse`` package
  are read-only; /tmp is private; the only other path is the sandbox's own directory,
  where the kernel's working directory is a copy of the submission's folder (a kernel
  sees no source/, release/, gradebook, other student or home directory);
- there is no network, only a loopback of its own: the kernel talks to the grader over
  ZeroMQ IPC sockets in the sandbox's directory;
- a cgroup caps memory (``memory_limit`` beyond what the preloaded fork server holds) and
  the number of processes and threads (``max_processes``);
- before each kernel, the server kills every other process in the sandbox and empties
  /tmp, and the submission's folder is copied afresh: nothing a kernel leaves behind
  reaches the next student. The server is pid 1 and not dumpable, so a kernel can
  neither signal nor trace it; the socket that asks it for kernels is not in the sandbox.

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
    return command + [sys.executable, "-m", "convcourse.warm", "serve",
                      "--fd", str(listen_fd), "--sandboxed"]


def sandbox_environment():
    """The environment the server (and so every kernel) starts from: nothing of the grader's."""
    return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/tmp",
            "LANG": "C.UTF-8", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": "/tmp/.matplotlib", "IPYTHONDIR": "/tmp/.ipython",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


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


def _pid_alive(text):
    return text.isdigit() and os.path.exists(f"/proc/{text}")


def remove_stale_folders():
    """Remove the sandbox folders of grading processes that were killed before removing
    theirs (``convcourse-sandbox-<pid>-...`` in the temporary folder)."""
    for path in Path(tempfile.gettempdir()).glob("convcourse-sandbox-*-*"):
        owner = path.name.split("-")[2]
        if owner.isdigit() and not _pid_alive(owner):
            fs.remove_tree(path)


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
        self._request({"op": "ping"}, timeout=300)  # the server imports torch first
        # The preloaded server's memory is charged to the cgroup: kernels get the limit on top.
        self.cgroup.write("memory", "memory.limit_in_bytes",
                          self.cgroup.read("memory", "memory.usage_in_bytes") + self.memory_limit)

    def reset(self):
        """Kill every process in the sandbox but the server, empty its /tmp; what went
        wrong, or None if done."""
        if self.process.poll() is not None:
            return f"its server exited with status {self.process.returncode}"
        try:
            answer = self._request({"op": "reset"})
        except (OSError, RuntimeError, ValueError) as error:
            return f"its server did not answer the reset ({type(error).__name__}: {error})"
        if answer.get("reset") is not True:
            return f"the reset left {', '.join(answer.get('left', [])) or 'something'}"
        return None

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
