"""Warm kernels: each grading kernel is forked from a process that has already imported torch.

A fresh kernel spends about 5 s importing torch and d2l before it runs a cell. Here a fork
server (``python -m convcourse.warm serve SOCKET``) imports them once; every kernel is a
new child forked from it, so it starts with those modules loaded but from a clean process
state: the server never runs notebook code, and no kernel sees another's changes.

Jupyter selects this through its own extension point: ``WarmProvisioner`` is a kernel
provisioner (entry point ``convcourse-warm``, registered in pyproject.toml), used by the
kernelspec ``convcourse-warm`` that ``python -m convcourse.warm install`` puts in the
environment. nbclient and nbgrader then start, interrupt and kill these kernels as any
other; ``c.Execute.kernel_name = "convcourse-warm"`` turns it on.
"""
import asyncio
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner

KERNEL_NAME = "convcourse-warm"
# What a course notebook imports; importing it in the server is what makes kernels warm.
PRELOAD = ["torch", "torchvision", "d2l.torch", "matplotlib.pyplot", "matplotlib_inline.backend_inline",
           "pandas", "ipykernel.kernelapp", "IPython", "convcourse.checks", "convcourse.drawing"]


# ---- the fork server ------------------------------------------------------------------------

def serve(socket_path):
    """Import PRELOAD, then fork one kernel per request on the Unix socket, forever."""
    import importlib
    for name in PRELOAD:
        importlib.import_module(name)
    _draw_once()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps its children
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(16)
    while True:
        connection, _ = server.accept()
        with connection:
            request = json.loads(_read_line(connection))
            pid = os.fork()
            if pid == 0:
                server.close()
                connection.close()
                _become_kernel(request)  # never returns
            connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def _draw_once():
    """Render one figure with text, so that every kernel finds matplotlib's fonts loaded."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    figure = plt.Figure()
    FigureCanvasAgg(figure)
    figure.add_subplot().text(0.5, 0.5, "warm 0123456789 ×⋆")
    figure.canvas.draw()


def _read_line(connection):
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode()


def _become_kernel(request):
    """In the forked child: take the kernel's environment and run ipykernel's launcher."""
    try:
        os.setsid()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sys.argv = ["ipykernel_launcher", *request["args"]]
        from ipykernel import kernelapp
        kernelapp.launch_new_instance()
    finally:
        os._exit(0)


# ---- the client side: one server per grading process ---------------------------------------

class ForkServer:
    """The fork server of this process, started on first use and stopped at exit."""

    _instance = None
    _lock = threading.Lock()

    @classmethod
    def get(cls):
        with cls._lock:
            if cls._instance is None or cls._instance.process.poll() is not None:
                cls._instance = cls()
            return cls._instance

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="convcourse-warm-")
        self.socket_path = os.path.join(self.directory, "fork.sock")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "convcourse.warm", "serve", self.socket_path],
            stdin=subprocess.DEVNULL)
        atexit.register(self.stop)
        deadline = time.monotonic() + 120
        while not os.path.exists(self.socket_path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the warm-kernel fork server did not start")
            time.sleep(0.05)

    def fork(self, args, cwd, env):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(self.socket_path)
            client.sendall(json.dumps({"args": args, "cwd": cwd, "env": env}).encode() + b"\n")
            return json.loads(_read_line(client))["pid"]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        for name in ("fork.sock",):
            Path(self.directory, name).unlink(missing_ok=True)
        os.rmdir(self.directory)


class ForkedKernelProcess:
    """A Popen look-alike for a kernel that is the fork server's child, not ours."""

    stdin = stdout = stderr = None

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
                with open(f"/proc/{self.pid}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                        self.returncode = -1
            except (ProcessLookupError, FileNotFoundError):
                self.returncode = -1  # its exit status went to the fork server
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum):
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def terminate(self):
        self.send_signal(signal.SIGTERM)


class WarmProvisioner(LocalProvisioner):
    """A LocalProvisioner whose kernels are forked from the warm fork server."""

    async def launch_kernel(self, cmd, **kwargs):
        # cmd is the kernelspec's argv, formatted: [python, -m, ipykernel_launcher, -f, FILE, ...]
        args = cmd[cmd.index("ipykernel_launcher") + 1:]
        env = kwargs.get("env") or dict(os.environ)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        pid = await asyncio.get_running_loop().run_in_executor(
            None, ForkServer.get().fork, args, cwd, env)
        self.process = ForkedKernelProcess(pid)
        self.pid = self.pgid = pid  # the child called setsid: its pid is its group
        self.cwd = cwd
        return self.connection_info

    async def wait(self):
        if self.process:
            while await self.poll() is None:
                await asyncio.sleep(0.05)
            self.process = None
        return 0


# ---- installing the kernelspec ---------------------------------------------------------------

def install_kernelspec(prefix=sys.prefix):
    """Install the ``convcourse-warm`` kernelspec into this environment."""
    from jupyter_client.kernelspec import KernelSpecManager
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (warm, for grading)",
        "language": "python",
        "metadata": {"kernel_provisioner": {"provisioner_name": "convcourse-warm"}},
    }
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "kernel.json").write_text(json.dumps(spec, indent=1))
        return KernelSpecManager().install_kernel_spec(directory, KERNEL_NAME, prefix=prefix)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        serve(argv[1])
    elif argv[:1] == ["install"]:
        print(install_kernelspec())
    else:
        sys.exit("usage: python -m convcourse.warm install | serve SOCKET")


if __name__ == "__main__":
    main()
