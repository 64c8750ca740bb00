"""Warm kernels: each grading kernel is forked from a process that has already imported torch.

The grader's side of the fork server (``convgrader.kernels.inside.server``): ``ForkServer``
starts one per grading process and asks it for kernels; ``ForkedKernelProcess`` stands for
a kernel that is the server's child, not ours.

Jupyter selects this through its own extension point: ``WarmProvisioner`` is a kernel
provisioner (entry point ``convcourse-warm``, registered in pyproject.toml), used by the
kernelspec ``convcourse-warm`` that ``convgrader kernelspec`` (``python -m convgrader.warm
install``) puts in the environment. nbclient and nbgrader then start, interrupt and kill
these kernels as any other; ``c.Execute.kernel_name = "convcourse-warm"`` turns it on.
"""
import asyncio
import atexit
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner

import convcourse
import convgrader
from convgrader import fs
from convgrader.errors import KernelServerError
from convgrader.kernels import protocol

KERNEL_NAME = "convcourse-warm"


class OnePerProcess:
    """A server of which a grading process has at most one, started on first use and
    stopped at exit: the fork server, or the sandbox. ``current`` and ``stop_current`` are
    for whoever must look at it or stop it (the tests). Each subclass has its own."""

    _instance: Any = None
    _lock: threading.Lock

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._instance, cls._lock = None, threading.Lock()

    @classmethod
    def current(cls) -> Self | None:
        """This process's server, or None if it has none now."""
        return cls._instance

    @classmethod
    def stop_current(cls) -> None:
        """Stop this process's server, if one runs (its kernels die with it); the next
        kernel gets a new one."""
        with cls._lock:
            if cls._instance is not None:
                cls._instance.stop()
                cls._instance = None

    def stop(self) -> None:
        raise NotImplementedError


class ForkServer(OnePerProcess):
    """The fork server of this process, started on first use and stopped at exit."""

    @classmethod
    def get(cls) -> "ForkServer":
        with cls._lock:
            if cls._instance is None or cls._instance.process.poll() is not None:
                cls._instance = cls()
            return cls._instance

    def __init__(self) -> None:
        fs.remove_stale("convcourse-warm-")  # the folders of killed grading processes
        self.directory = tempfile.mkdtemp(prefix=f"convcourse-warm-{os.getpid()}-")
        self.socket_path = os.path.join(self.directory, "fork.sock")
        # Kernels import the packages this process imported (a copy of the course has its
        # own), not the ones the venv's editable install names. (Both are regular packages,
        # whose ``__file__`` typeshed allows to be None.)
        parents = [str(Path(package.__file__).resolve().parent.parent)  # type: ignore[arg-type]
                   for package in (convcourse, convgrader)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(dict.fromkeys(
            parents + [p for p in [os.environ.get("PYTHONPATH")] if p])))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "convgrader.kernels.inside.server", "serve", self.socket_path,
             "--parent", str(os.getpid())], stdin=subprocess.DEVNULL, env=env)
        atexit.register(self.stop)

    def wait_until_serving(self, timeout: float = 120) -> None:
        """Wait until the server's socket exists; requests then wait in its backlog while
        it imports torch."""
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.socket_path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise KernelServerError("the warm-kernel fork server did not start")
            time.sleep(0.05)

    def fork(self, args: list[str], cwd: str, env: dict[str, str]) -> int:
        """Ask the server for a kernel; its pid once its sockets are bound."""
        self.wait_until_serving()
        return protocol.ask(self.socket_path, {"op": protocol.FORK, "args": args, "cwd": cwd,
                                               "env": env})["pid"]

    def stop(self) -> None:
        """Stop the server (its kernels die with it) and remove its folder."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        fs.remove_tree(self.directory)


class ForkedKernelProcess:
    """A Popen look-alike for a kernel that is the fork server's child, not ours."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
                with open(f"/proc/{self.pid}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                        self.returncode = -1
            except (ProcessLookupError, FileNotFoundError):
                self.returncode = -1  # its exit status went to the fork server
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                # a deadline means a timeout (mypy does not follow that): not None
                raise subprocess.TimeoutExpired(str(self.pid), timeout)  # type: ignore[arg-type]
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def kernel_arguments(cmd: list[str]) -> list[str]:
    """ipykernel's arguments in a kernel command: the kernelspec's argv, formatted
    ([python, -m, ipykernel_launcher, -f, FILE]), then the client's extra arguments.

    First comes an in-memory input history: nbclient asks that only of kernels named
    "python3" (and the like), so stock kernels under nbgrader keep no history file either.
    A file would cost a database write per cell and keep the students' code.
    """
    return ["--HistoryManager.hist_file=:memory:", *cmd[cmd.index("ipykernel_launcher") + 1:]]


class WarmProvisioner(LocalProvisioner):
    """A LocalProvisioner whose kernels are forked from the warm fork server."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        args = kernel_arguments(cmd)
        env = dict(kwargs.get("env") or os.environ)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        pid = await asyncio.get_running_loop().run_in_executor(
            None, ForkServer.get().fork, args, cwd, env)
        # Not a Popen but its look-alike: jupyter_client only polls, waits and signals it.
        self.process = ForkedKernelProcess(pid)  # type: ignore[assignment]
        self.pid = self.pgid = pid  # the child called setsid: its pid is its group
        self.cwd = cwd
        return self.connection_info

    async def wait(self) -> int | None:
        if self.process:
            await self._exit()
            self.process = None
        return 0

    # jupyter_client polls for a kernel's exit every 0.1 s, sleeping first; a forked kernel
    # is gone a few milliseconds after its shutdown request or a signal. Looking for that at
    # a finer interval here saves a tenth of a warm notebook's grading time.
    async def shutdown_requested(self, restart: bool = False) -> None:
        await self._exit(within=1.0)

    async def kill(self, restart: bool = False) -> None:
        await super().kill(restart)
        await self._exit(within=1.0)

    async def _exit(self, within: float | None = None) -> None:
        """Wait until the kernel has exited, or ``within`` seconds have passed."""
        deadline = None if within is None else time.monotonic() + within
        while self.process and self.process.poll() is None and \
                (deadline is None or time.monotonic() < deadline):
            await asyncio.sleep(0.005)
