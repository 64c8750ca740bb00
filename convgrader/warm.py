"""Warm kernels: each grading kernel is forked from a process that has already imported torch.

A fresh kernel spends about 5 s importing torch and d2l before it runs a cell. Here a fork
server (``python -m convgrader.warm serve SOCKET --parent PID``) imports them once; every
kernel is a new child forked from it, so it starts with those modules loaded but from a
clean process state: the server never runs notebook code, and no kernel sees another's
changes. Each kernel dies with its fork server, and the server with its grading process.

Jupyter selects this through its own extension point: ``WarmProvisioner`` is a kernel
provisioner (entry point ``convcourse-warm``, registered in pyproject.toml), used by the
kernelspec ``convcourse-warm`` that ``python -m convgrader.warm install`` puts in the
environment. nbclient and nbgrader then start, interrupt and kill these kernels as any
other; ``c.Execute.kernel_name = "convcourse-warm"`` turns it on.
"""
import asyncio
import atexit
import gc
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.provisioning import LocalProvisioner

from convgrader import fs

KERNEL_NAME = "convcourse-warm"
# What a course notebook imports; importing it in the server is what makes kernels warm.
PRELOAD = ["torch", "torchvision", "d2l.torch", "matplotlib.pyplot",
           "matplotlib_inline.backend_inline", "pandas", "ipykernel.kernelapp",
           "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger", "IPython",
           "pygments.styles.default", "PIL.PngImagePlugin", "convcourse.checks",
           "convcourse.drawing"]


# ---- the fork server ------------------------------------------------------------------------

def serve(listener, sandboxed=False):
    """Import PRELOAD, then answer requests on the listening Unix socket, forever.

    Requests are JSON lines: ``{"op": "fork", "args", "cwd", "env"}`` forks a kernel and
    answers its pid, then "ready" once its sockets are bound; ``{"op": "ping"}`` answers
    once the imports are done; in a sandbox (``convgrader.sandbox``), ``{"op": "reset"}``
    kills every other process of the sandbox and empties its writable folders before the
    next kernel, and each kernel first enters namespaces of its own (``isolate_kernel``).
    Where they cannot be made, every request is answered ``{"error": why}``.
    """
    import importlib
    # Graders run one kernel per core: more OpenMP threads would only spin against the other
    # workers' kernels (a third of a kernel's CPU time here). Set before torch is imported.
    os.environ["OMP_NUM_THREADS"] = "1"
    isolate = None
    if sandboxed:
        _protect_from_kernels()
        from convgrader.sandbox import isolate_kernel as isolate
        refusal = _try_in_child(isolate)
        if refusal:  # say why to whoever asks, rather than start kernels that die at once
            _refuse_forever(listener, "the sandbox cannot give each kernel namespaces of its "
                            f"own ({refusal}): allow nested user namespaces (the sysctl "
                            "user.max_user_namespaces, or an AppArmor restriction)")
    for name in PRELOAD:
        importlib.import_module(name)
    _rehearse()
    # Kernels would otherwise have their first full garbage collection walk (and so copy, page
    # by page) every object the server imported: keep those out of the collector's sight.
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are reaped without waiting
    mounts = _mount_points()  # the sandbox as bubblewrap built it
    while True:
        connection, _ = listener.accept()
        with connection:
            request = json.loads(read_line(connection) or "{}")
            op = request.get("op")
            if op == "fork":
                server = os.getpid()
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    _become_kernel(request, connection, server, isolate)  # never returns
                answer = {"pid": pid}
            elif op == "reset" and sandboxed:
                try:
                    left = _reset_sandbox(mounts)
                except Exception as error:  # say so: the grader builds a new sandbox
                    left = [f"an error ({type(error).__name__}: {error})"]
                answer = {"reset": not left, "left": left}
            else:
                answer = {"pong": True}
            connection.sendall(json.dumps(answer).encode() + b"\n")


def _prctl(option, value):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl({option}): {os.strerror(error)}")


def _die_with(parent):
    """Get SIGKILL when ``parent`` (this process's parent, by pid) dies: a kernel with its
    fork server, the server with its grading process (bubblewrap's --die-with-parent does
    this for a sandboxed server, and a sandbox's kernels die with its pid namespace).

    If the parent died before the call, the signal will never come: exit now instead."""
    PR_SET_PDEATHSIG = 1
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _first_to_go_when_memory_runs_out():
    """Make this process (a kernel, and what it starts) the first that the out-of-memory
    killer picks, before its fork server: a sandbox's server is its pid 1, and the whole
    sandbox would go with it. Raising one's own score needs no privilege; lowering it does."""
    with open("/proc/self/oom_score_adj", "w") as score:
        score.write("1000")


def _try_in_child(function):
    """Call ``function`` in a forked child; why it failed there, or None."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            function()
        except BaseException as error:
            os.write(write, f"{type(error).__name__}: {error}".encode()[:4000])
        finally:
            os._exit(0)
    os.close(write)
    with open(read, "rb") as pipe:
        error = pipe.read().decode()
    os.waitpid(pid, 0)
    return error or None


def _refuse_forever(listener, reason):
    while True:
        connection, _ = listener.accept()
        with connection:
            connection.sendall(json.dumps({"error": reason}).encode() + b"\n")


def _protect_from_kernels():
    """Not dumpable: kernels (same user) cannot trace this process or read its memory."""
    PR_SET_DUMPABLE = 4
    _prctl(PR_SET_DUMPABLE, 0)


def _reset_sandbox(expected_mounts):
    """Kill every process of the sandbox but this one (pid 1) and empty every writable
    folder; what is left (processes, paths, System V IPC objects, mounts moved away from
    ``expected_mounts``, the mount points at the start), nothing if done.

    The writable folders are not a list: they are every file system mounted read-write in
    the sandbox (from /proc/self/mountinfo), but /proc and terminals. A mount added to the
    sandbox is emptied too. Each kernel has its own IPC namespace and /dev/shm (see
    ``convgrader.sandbox.isolate_kernel``): they went with its processes, and the check of
    /proc/sysvipc here shows that none was made in the sandbox's own. A kernel cannot mount
    or unmount here, but it may rename the folders that lead to a mount in /tmp (a venv or
    course under /tmp): the mount moves with them, so the mount points are checked too.
    """
    if os.getpid() != 1:  # kill(-1) outside a pid namespace would kill everything we own
        raise RuntimeError("reset outside a sandbox's pid namespace")
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
    now = _mount_points()
    if now != expected_mounts:
        left.append(f"the sandbox's mounts changed (gone: {sorted(expected_mounts - now)}, "
                    f"new: {sorted(now - expected_mounts)})")
    return left + _ipc_objects()


# Seconds the reset waits for the processes it killed to be gone.
KILL_TIMEOUT = 30
# File systems whose entries belong to processes or terminals: nothing to empty there.
NOT_STORAGE = {"proc", "sysfs", "devpts"}


def _mounts():
    """(mount point, file system type, writable) of each mount in this mount namespace."""
    def unescape(field):
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)

    mounts = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            tail = fields[fields.index("-") + 1:]  # type, source, super block options
            writable = "rw" in fields[5].split(",") and "rw" in tail[2].split(",")
            mounts.append((unescape(fields[4]), tail[0], writable))
    return mounts


def _mount_points():
    """The mount points of this process's mount namespace."""
    return {point for point, _, _ in _mounts()}


def _writable_folders(mounts):
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


def _ipc_objects():
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


def _describe_process(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:  # "pid (name) state ..."
            name, rest = stat.read().split(" (", 1)[1].rsplit(") ", 1)
        return f"process {pid} ({name}, state {rest.split()[0]})"
    except (OSError, IndexError, ValueError):
        return f"process {pid}"


def _other_processes():
    return [p for p in os.listdir("/proc") if p.isdigit() and p != str(os.getpid())]


def _rehearse():
    """Do once what every kernel does first, so that kernels find it done (lazily loaded
    fonts, image plugins, operator tables, traceback formatting). No notebook code runs."""
    import io
    import IPython.core.ultratb
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    figure = plt.Figure()
    FigureCanvasAgg(figure)
    figure.add_subplot().text(0.5, 0.5, "warm 0123456789 ×⋆→")
    figure.canvas.print_figure(io.BytesIO(), format="png", bbox_inches="tight")
    X = torch.arange(16.0).reshape(4, 4)
    str(X)
    try:
        torch.testing.assert_close(X, X + 1)
    except AssertionError:
        IPython.core.ultratb.VerboseTB(color_scheme="Linux").text(*sys.exc_info())


def read_line(connection):
    """One line (without its end) from a socket; empty if it closed first."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode()


def ask(socket_path, request, timeout=None):
    """Send ``request`` to the fork server listening on ``socket_path``; its answer (for a
    fork, once the kernel is ready)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        client.connect(socket_path)
        client.sendall(json.dumps(request).encode() + b"\n")
        answer = json.loads(read_line(client) or "null")
        if request.get("op") == "fork":
            read_line(client)  # the kernel's "ready", or nothing if it died first: go on
        if not answer:
            raise RuntimeError("the fork server closed the connection")
        return answer


def _become_kernel(request, connection, server, isolate=None):
    """In the forked child: take the kernel's environment and run ipykernel's kernel app.

    It dies with its fork server (``server``, by pid); in a sandbox, ``isolate`` first gives
    it namespaces of its own. Once its sockets are bound it says so on ``connection``: a
    client that connects only then does not wait out ZeroMQ's reconnect interval.
    """
    try:
        _die_with(server)
        if isolate is not None:
            isolate(request.get("shm_size"))
            _die_with(server)  # again: a change of credentials may clear it
            from convgrader.limits import apply_kernel_rlimits
            apply_kernel_rlimits(request.get("rlimits") or {})
        else:
            _first_to_go_when_memory_runs_out()
        os.setsid()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
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
        fs.remove_stale("convcourse-warm-")  # the folders of killed grading processes
        self.directory = tempfile.mkdtemp(prefix=f"convcourse-warm-{os.getpid()}-")
        self.socket_path = os.path.join(self.directory, "fork.sock")
        # Kernels import the packages this process imported (a copy of the course has its
        # own), not the ones the venv's editable install names.
        import convcourse
        import convgrader
        parents = [str(Path(package.__file__).resolve().parent.parent)
                   for package in (convcourse, convgrader)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(dict.fromkeys(
            parents + [p for p in [os.environ.get("PYTHONPATH")] if p])))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "convgrader.warm", "serve", self.socket_path,
             "--parent", str(os.getpid())], stdin=subprocess.DEVNULL, env=env)
        atexit.register(self.stop)

    def wait_until_serving(self, timeout=120):
        """Wait until the server's socket exists; requests then wait in its backlog while
        it imports torch."""
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.socket_path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the warm-kernel fork server did not start")
            time.sleep(0.05)

    def fork(self, args, cwd, env):
        """Ask the server for a kernel; its pid once its sockets are bound."""
        self.wait_until_serving()
        return ask(self.socket_path, {"op": "fork", "args": args, "cwd": cwd, "env": env})["pid"]

    def stop(self):
        """Stop the server (its kernels die with it) and remove its folder."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        fs.remove_tree(self.directory)


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


def kernel_arguments(cmd):
    """ipykernel's arguments in a kernel command: the kernelspec's argv, formatted
    ([python, -m, ipykernel_launcher, -f, FILE]), then the client's extra arguments.

    First comes an in-memory input history: nbclient asks that only of kernels named
    "python3" (and the like), so stock kernels under nbgrader keep no history file either.
    A file would cost a database write per cell and keep the students' code.
    """
    return ["--HistoryManager.hist_file=:memory:", *cmd[cmd.index("ipykernel_launcher") + 1:]]


class WarmProvisioner(LocalProvisioner):
    """A LocalProvisioner whose kernels are forked from the warm fork server."""

    async def launch_kernel(self, cmd, **kwargs):
        args = kernel_arguments(cmd)
        env = dict(kwargs.get("env") or os.environ)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        pid = await asyncio.get_running_loop().run_in_executor(
            None, ForkServer.get().fork, args, cwd, env)
        self.process = ForkedKernelProcess(pid)
        self.pid = self.pgid = pid  # the child called setsid: its pid is its group
        self.cwd = cwd
        return self.connection_info

    async def wait(self):
        if self.process:
            await self._exit()
            self.process = None
        return 0

    # jupyter_client polls for a kernel's exit every 0.1 s, sleeping first; a forked kernel
    # is gone a few milliseconds after its shutdown request or a signal. Looking for that at
    # a finer interval here saves a tenth of a warm notebook's grading time.
    async def shutdown_requested(self, restart=False):
        await self._exit(within=1.0)

    async def kill(self, restart=False):
        await super().kill(restart)
        await self._exit(within=1.0)

    async def _exit(self, within=None):
        """Wait until the kernel has exited, or ``within`` seconds have passed."""
        deadline = None if within is None else time.monotonic() + within
        while self.process and self.process.poll() is None and \
                (deadline is None or time.monotonic() < deadline):
            await asyncio.sleep(0.005)


STOCK_CLIENT = "jupyter_client.asynchronous.AsyncKernelClient"  # nbclient's, for comparisons


class PromptKernelClient(AsyncKernelClient):
    """jupyter_client's asynchronous client, ready as soon as the kernel shows it is.

    The stock ``wait_for_ready`` ends by waiting for 0.2 s of silence on IOPub: a fifth of
    a warm notebook's grading. ipykernel (7 and later) greets each IOPub subscription with an
    ``iopub_welcome`` message; after it, nothing the kernel publishes can be missed, so the
    wait ends with the kernel_info reply and the "idle" status of that request. A kernel
    that sends no greeting gets the stock wait after ``greeting_timeout`` seconds.
    """

    greeting_timeout = 10.0

    async def wait_for_ready(self, timeout=None):
        try:
            await asyncio.wait_for(self._greeted_and_answered(), self.greeting_timeout)
        except asyncio.TimeoutError:
            await super().wait_for_ready(timeout)

    async def _greeted_and_answered(self):
        while (await self.iopub_channel.get_msg())["msg_type"] != "iopub_welcome":
            pass
        msg_id = self.kernel_info()
        reply = await self._async_recv_reply(msg_id)
        self._handle_kernel_info_reply(reply)
        while True:
            msg = await self.iopub_channel.get_msg()
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status" \
                    and msg["content"]["execution_state"] == "idle":
                return


# ---- installing the kernelspec ---------------------------------------------------------------

KERNELSPECS = {  # name: (provisioner, display name)
    KERNEL_NAME: ("convcourse-warm", "Python 3 (warm, for grading)"),
    "convcourse-sandbox": ("convcourse-sandbox", "Python 3 (sandboxed and warm, for grading)"),
}


def install_kernelspec(prefix=sys.prefix):
    """Install the grading kernelspecs (``convcourse-warm``, ``convcourse-sandbox``)."""
    from jupyter_client.kernelspec import KernelSpecManager
    installed = []
    for name, (provisioner, display_name) in KERNELSPECS.items():
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": display_name,
            "language": "python",
            "metadata": {"kernel_provisioner": {"provisioner_name": provisioner}},
        }
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "kernel.json").write_text(json.dumps(spec, indent=1))
            # The spec is copied with its modes: readable by every user of the venv, not
            # the temporary folder's 700.
            os.chmod(directory, 0o755)
            os.chmod(Path(directory, "kernel.json"), 0o644)
            installed.append(KernelSpecManager().install_kernel_spec(
                directory, name, prefix=prefix))
    return "\n".join(installed)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"] and argv[1:2] == ["--fd"]:
        # The listening socket was opened by the caller (outside the sandbox) and inherited.
        listener = socket.socket(fileno=int(argv[2]))
        serve(listener, sandboxed="--sandboxed" in argv)
    elif argv[:1] == ["serve"] and len(argv) == 4 and argv[2] == "--parent":
        _die_with(int(argv[3]))
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(argv[1])  # at once: clients may connect, and are answered once it imported
        listener.listen(16)
        serve(listener)
    elif argv[:1] == ["install"]:
        print(install_kernelspec())
    else:
        sys.exit("usage: python -m convgrader.warm install | serve SOCKET --parent PID | "
                 "serve --fd N [--sandboxed]")


if __name__ == "__main__":
    main()
