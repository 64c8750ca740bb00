"""Sandboxed grading kernels: bubblewrap namespaces and cgroup limits around warm kernels.

Student code runs in the kernel, so during grading it would otherwise have the grader's
rights: write the gradebook, read source/ and other students' work, open connections.
Here each grading process (``nbgrader autograde``, or one worker of the batch grader)
starts one sandbox: ``bwrap`` runs the warm fork server (``convgrader.kernels.inside.server``)
as pid 1 of
its own pid, network, mount, IPC and user namespaces, and every kernel is forked inside it.

Who the kernel is on the host: the sandbox runs as the grader's user when that is an
ordinary user, and as the unprivileged account ``KERNEL_ACCOUNT`` when the grader is root
(bubblewrap maps the kernel's uid to the identity it runs with: as root, that was root).
The sandbox's folder, which the kernel owns and may open to anyone, lives in a parent
folder only the grader (and, as root, the account's group) can enter, which the sandbox does
not show: another user of the machine cannot reach what a kernel writes there.

Inside the sandbox:
- the system (/usr, and of /etc only ``ETC_SHOWN`` and accounts of its own), Python, the
  virtual environment and the course's packages (``convcourse`` and ``convgrader``) are
  read-only, and so are /proc/sys, the sandbox's root and /dev; there is no /sys; /tmp is
  private; the only other path is the sandbox's own directory, where the kernel's working
  directory is a copy of the submission's folder without its notebooks (the graded copy
  holds the test cells, hidden ones included; a kernel sees no source/, release/,
  gradebook, other student or home directory);
- each kernel has a user, IPC and mount namespace of its own, with its own /dev/shm, and
  no capability (``isolate_kernel``): its shared memory and IPC objects die with it;
- there is no network, only a loopback of its own: the kernel talks to the grader over
  ZeroMQ IPC sockets in the sandbox's directory;
- memory (``memory_limit`` beyond what the preloaded fork server holds) and processes and
  threads (``max_processes``) are capped by the best the machine offers: a cgroup v2 (as
  root, or delegated to an ordinary user), a cgroup v1 as root, else rlimits on each kernel
  (``convgrader.kernels.limits``; the log says which);
- before each kernel, the server kills every other process in the sandbox and empties
  every writable mount (``convgrader.kernels.inside.reset``), the grader waits until the
  last kernels' shared memory is freed, and the submission's folder is copied afresh:
  nothing a kernel leaves behind reaches the next student. The server is pid 1 and not
  dumpable, so a kernel can neither signal nor trace it; the socket that asks it for
  kernels is not in the sandbox. Killing the grading process kills the whole sandbox.

The sandbox needs no privilege: an ordinary user builds it with user namespaces. The
server imports the very packages that the grader imported (from a copy of the
course too), with the venv's interpreter by a path that the sandbox shows (a venv reached
through a symbolic link too).

``SandboxedProvisioner`` is the kernel provisioner of the kernelspec ``convcourse-sandbox``
(installed by ``convgrader kernelspec``) that nbgrader_config.py selects for
autograding. Where bubblewrap is missing or cannot make namespaces, it refuses to start a
kernel unless ``c.SandboxedProvisioner.allow_unsandboxed = True``: then kernels are warm
but unconfined. ``python -m convgrader.sandbox`` says what this machine allows.
"""
import asyncio
import atexit
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil
from jupyter_client.connect import KernelConnectionInfo
from traitlets import Bool, Integer, Unicode

from convgrader import fs
from convgrader.errors import (KernelServerError, SandboxNotClean, SandboxUnavailable,
                               SubmissionRefused)
from convgrader.kernels import limits, protocol
from convgrader.kernels.bwrap import (ETC_WRITTEN, KERNEL_ACCOUNT, bwrap_command, data_fd,
                                      host_identity, run_as, sandbox_environment, sandbox_python,
                                      unavailable_reason)
from convgrader.kernels.forkserver import (ForkedKernelProcess, OnePerProcess, WarmProvisioner,
                                           kernel_arguments)

KERNEL_NAME = "convcourse-sandbox"
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


def parse_bytes(text: str | int) -> int:
    """'2G' -> 2147483648; plain integers are bytes."""
    text = str(text).strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)



# ---- the grader's side -----------------------------------------------------------------------

def _empty(directory: Path) -> None:
    """Remove everything in ``directory``, however deep, without following any symbolic
    link; raises SandboxNotClean if something stays."""
    left = fs.empty(directory)
    if left:
        raise SandboxNotClean(f"could not empty {directory}: {', '.join(left[:5])}")


# A submission's folder deeper than this is not copied into the sandbox (nor walked further).
MAX_SUBMISSION_DEPTH = 64


def _check_size(directory: Path | str, limit: int) -> None:
    """Refuse a folder that holds more than ``limit`` bytes, or is too deep to copy.

    A loop of its own, not os.walk: that recurses, and a deep folder would raise
    RecursionError (a failure of this submission, but a confusing one)."""
    total, todo = 0, [(str(directory), 0)]
    while todo:
        folder, depth = todo.pop()
        if depth > MAX_SUBMISSION_DEPTH:
            raise SubmissionRefused(f"{directory} is more than {MAX_SUBMISSION_DEPTH} folders "
                                     "deep: it is not copied into the sandbox")
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    todo.append((entry.path, depth + 1))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
        if total > limit:
            raise SubmissionRefused(f"{directory} holds more than {limit // 2 ** 20} MiB: it "
                                     "is not copied into the sandbox")


# Not copied into the kernel's folder: notebooks (the graded copy holds the instructor's
# test cells) and their checkpoints.
KEPT_FROM_KERNEL = ("*.ipynb", ".ipynb_checkpoints")


def remove_stale_folders() -> None:
    """Remove the sandbox folders of grading processes that were killed before removing
    theirs (``convcourse-sandbox-<pid>-...`` in the temporary folder)."""
    fs.remove_stale("convcourse-sandbox-")


class Sandbox(OnePerProcess):
    """The sandbox of this grading process, started on first use and stopped at exit."""

    last_replaced: str | None = None  # why the last sandbox was replaced, for logs and tests
    announced: "Sandbox | None" = None  # the last sandbox whose limits the log gave

    @classmethod
    def for_next_kernel(cls, memory_limit: str | int, max_processes: int) -> "Sandbox":
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

    def __init__(self, memory_limit: str | int, max_processes: int) -> None:
        self.memory_limit = parse_bytes(memory_limit)
        self.uid, self.gid = host_identity()
        remove_stale_folders()
        name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.limits = limits.choose(name, self.memory_limit, max_processes)
        # Outside the sandbox: the socket that asks the server for kernels.
        self.control = Path(tempfile.mkdtemp(prefix=f"convcourse-sandbox-{os.getpid()}-control-"))
        # Inside: kernels' connection files, IPC sockets and working directory, in a folder
        # that the kernel owns and may open to anyone (it can chmod it), so its parent is
        # one that only the grader, and the sandbox's own account, can enter, and that the
        # sandbox does not show: nothing a kernel writes there, a setuid copy of python
        # say, can be reached by another user of the machine.
        self.parent = Path(tempfile.mkdtemp(prefix=f"convcourse-sandbox-{os.getpid()}-"))
        if os.geteuid() == 0:
            os.chown(self.parent, 0, self.gid)
            os.chmod(self.parent, 0o710)
        self.directory = self.parent / "sandbox"
        self.directory.mkdir(mode=0o700)
        os.chown(self.directory, self.uid, self.gid)
        self.work = self.directory / "work"
        self.socket_path = str(self.control / "fork.sock")
        self.log_path = self.control / "sandbox.log"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.socket_path)
        listener.listen(16)
        listener.set_inheritable(True)
        etc_fds = {name: data_fd(text) for name, text in ETC_WRITTEN.items()}
        try:
            with open(self.log_path, "wb") as log_file:
                self.process = subprocess.Popen(
                    bwrap_command(self.directory, listener.fileno(), self.limits.shm_size(),
                                  etc_fds),
                    pass_fds=[listener.fileno(), *etc_fds.values()], env=sandbox_environment(),
                    stdin=subprocess.DEVNULL, stderr=log_file, preexec_fn=self._enter)
        finally:
            for fd in etc_fds.values():
                os.close(fd)
        self.limits.attach(self.process.pid)
        listener.close()
        atexit.register(self.stop)
        try:  # the server imports torch first
            answer = self._request({"op": protocol.PING}, timeout=300)
        except (OSError, KernelServerError, ValueError) as error:
            answer = {"error": self._why_it_did_not_start(error)}
        if "error" in answer:
            self.stop()
            raise SandboxUnavailable(f"Refusing to run student code: {answer['error']}")
        # The preloaded server's memory is charged to the cgroup: kernels get the limit on top.
        self.limits.limit_memory()
        self.shmem_at_start = self.limits.shmem()
        self.kernel_memory_after_reset = self.limits.kernel_memory()

    def _enter(self) -> None:
        """In the sandbox's first process: join the limits (as root, a cgroup of root's),
        then become the sandbox's host identity."""
        self.limits.enter()
        run_as(self.uid, self.gid)

    def _why_it_did_not_start(self, error: Exception) -> str:
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass
        said = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
        account = "" if os.geteuid() != 0 else (
            f" As root, the sandbox runs as {KERNEL_ACCOUNT}: it must be able to read "
            f"{sandbox_python()}, the venv and the course's packages (no folder on their way "
            "may be private to root).")
        return (f"the sandbox did not start ({type(error).__name__}: {error}; it said: "
                f"{' / '.join(said) or 'nothing'}).{account}")

    def reset(self) -> str | None:
        """Kill every process in the sandbox but the server, empty every writable folder;
        what went wrong, or None if done (see ``inside.reset.reset_sandbox``)."""
        if self.process.poll() is not None:
            return f"its server exited with status {self.process.returncode}"
        try:
            answer = self._request({"op": protocol.RESET})
        except (OSError, KernelServerError, ValueError) as error:
            return f"its server did not answer the reset ({type(error).__name__}: {error})"
        left = answer.get("left", []) if answer.get("reset") is True else \
            answer.get("left") or ["something"]
        left = left + self._memory_held()
        return f"the reset left {', '.join(left)}" if left else None

    def _memory_held(self, timeout: float = 5) -> list[str]:
        """The memory that the last kernels left charged to the sandbox, once Linux has
        freed their namespaces (it frees an IPC namespace, its System V segments and message
        queues, a moment after its last process: 0.1-0.6 s here), or after ``timeout``.

        Shared memory (tmpfs files, System V segments) is compared with the server's at the
        start; kernel memory (message queues, semaphores, and caches of file names that Linux
        reclaims when it needs) with the level after the last reset that left nothing."""
        if not self.limits.counts_memory:
            return []  # rlimits only: each kernel's /dev/shm and IPC went with its namespaces
        deadline = time.monotonic() + timeout
        while True:
            shared, kernel = self.limits.shmem(), self.limits.kernel_memory()
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

    def _request(self, request: dict[str, Any],
                 timeout: float | None = ANSWER_TIMEOUT) -> dict[str, Any]:
        return protocol.ask(self.socket_path, request, timeout)

    def start_kernel(self, submission_dir: Path | str, connection_info: KernelConnectionInfo,
                     env: dict[str, str], arguments: Iterable[str] = ()) -> int:
        """Fork a kernel that works on a copy of ``submission_dir``; its pid out here.

        ``arguments`` are ipykernel's command-line arguments other than the connection file
        (nbclient's ``--HistoryManager.hist_file=:memory:``, ``Execute.extra_arguments``)."""
        # The sandbox was reset (for_next_kernel): no process of the last kernel is left.
        # Nor is anything it left in the sandbox's folder, such as a symbolic link planted
        # where this process is about to write.
        _empty(self.directory)
        os.chmod(self.directory, 0o700)  # a kernel may have opened it: only its parent is ours
        _check_size(submission_dir, MAX_SUBMISSION_BYTES)
        # Symbolic links are copied as links: they point into the sandbox's view, not ours.
        # No notebook: the one nbgrader put in the graded folder holds the test cells,
        # hidden tests included, restored from the gradebook before the kernel runs.
        shutil.copytree(submission_dir, self.work, symlinks=True,
                        ignore=shutil.ignore_patterns(*KEPT_FROM_KERNEL))
        connection_file = self.directory / "kernel.json"
        with open(connection_file, "x") as out:  # "x": a fresh file, never through a link
            out.write(json.dumps(
                {k: v.decode() if isinstance(v, bytes) else v for k, v in connection_info.items()}))
        if (self.uid, self.gid) != (os.geteuid(), os.getegid()):  # root: the account's to use
            fs.give_tree(self.work, self.uid, self.gid)
            os.chown(connection_file, self.uid, self.gid)
        inner_pid = self._request({"op": protocol.FORK,
                                   "args": ["-f", str(connection_file), *arguments],
                                   "cwd": str(self.work), "env": env,
                                   "rlimits": self.limits.kernel_rlimits(),
                                   "shm_size": self.limits.shm_size()})["pid"]
        return self.host_pid(inner_pid)

    def host_pid(self, inner_pid: int) -> int:
        """The pid, as this process sees it, of the sandbox's process ``inner_pid``."""
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                with open(f"/proc/{child.pid}/status") as status:
                    for line in status:
                        if line.startswith("NSpid:") and int(line.split()[-1]) == inner_pid:
                            return child.pid
            except (FileNotFoundError, ProcessLookupError):
                continue
        raise KernelServerError(f"the sandboxed kernel (pid {inner_pid} inside) is gone")

    def stop(self) -> None:
        """Kill the sandbox, wait until none of its processes is left, remove its folders."""
        # Every process of the sandbox at once, bubblewrap included (with rlimits only, its
        # tree is found through bubblewrap, so before it goes); none may write in the
        # folders while they are removed.
        gone = self.limits.kill_all()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self.limits.remove()
        left = fs.remove_tree(self.parent) + fs.remove_tree(self.control)
        if left or not gone:
            log.warning("Stopping a sandbox left %s", ", ".join(
                left + ([] if gone else [f"processes {sorted(self.limits.processes())}"])))


def _without_connection_file(arguments: Iterable[str]) -> list[str]:
    """ipykernel's arguments without ``-f FILE``: the sandbox writes its own file."""
    kept, arguments = [], iter(arguments)
    for argument in arguments:
        if argument == "-f":
            next(arguments, None)
        elif not argument.startswith(("-f=", "--f=")):
            kept.append(argument)
    return kept


class SandboxedProvisioner(WarmProvisioner):
    """Warm kernels forked inside this process's sandbox (see the module's docstring)."""

    memory_limit = Unicode(
        "2G", help="Memory a kernel may use (K/M/G suffixes), beyond the shared preloaded "
                   "modules.").tag(config=True)
    max_processes = Integer(
        512, help="Processes and threads in one sandbox (a kernel has about 20).").tag(config=True)
    allow_unsandboxed = Bool(
        False, help="Where no sandbox can be built, run kernels unconfined instead of "
                    "refusing to grade.").tag(config=True)

    def _sandboxed(self) -> bool:
        reason = unavailable_reason()
        if reason is None:
            return True
        if not self.allow_unsandboxed:
            raise SandboxUnavailable(
                f"Refusing to run student code without a sandbox: {reason}",
                "To grade without one anyway (student code then runs with your rights), set "
                "c.SandboxedProvisioner.allow_unsandboxed = True in nbgrader_config.py.")
        self.log.warning("Grading WITHOUT a sandbox (allow_unsandboxed): %s", reason)
        return False

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        self.sandbox: Sandbox | None = None
        if self._sandboxed():
            self.sandbox = Sandbox.for_next_kernel(self.memory_limit, self.max_processes)
            if self.sandbox is not Sandbox.announced:  # once per sandbox, in the grader's log
                Sandbox.announced = self.sandbox
                self.log.info("Grading sandbox %s, limits: %s", self.sandbox.directory,
                              self.sandbox.limits.describe())
            km = self.parent
            assert km is not None  # the kernel manager that launches this kernel
            # ZeroMQ over IPC sockets in the sandbox's directory: the only way across.
            km.transport = "ipc"
            km.ip = str(self.sandbox.directory / "kernel-ipc")
        return await super().pre_launch(**kwargs)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        if self.sandbox is None:
            return await super().launch_kernel(cmd, **kwargs)
        env = sandbox_environment()
        env.update({k: v for k, v in (kwargs.get("env") or {}).items()
                    if k.startswith(("JPY_", "NBGRADER_"))})
        cwd = str(kwargs.get("cwd") or os.getcwd())
        pid = await asyncio.get_running_loop().run_in_executor(
            None, self.sandbox.start_kernel, cwd, self.connection_info, env,
            _without_connection_file(kernel_arguments(cmd)))
        # Not a Popen but its look-alike: jupyter_client only polls, waits and signals it.
        self.process = ForkedKernelProcess(pid)  # type: ignore[assignment]
        self.pid = self.pgid = pid
        self.cwd = cwd
        return self.connection_info


def main() -> int:
    """`python -m convgrader.sandbox` (`convgrader sandbox-check`): what this machine allows."""
    reason = unavailable_reason()
    if reason is None:
        chosen = limits.choose(f"{os.getpid()}-check", parse_bytes("2G"), 512)
        reason_line = f"A sandbox can be built here. Limits (for 2G, 512): {chosen.describe()}"
        chosen.remove()
    print(reason or reason_line)
    return 1 if reason else 0


if __name__ == "__main__":
    sys.exit(main())
