"""The fork server: imports what kernels use once, then forks each kernel from itself.

A fresh kernel spends about 5 s importing torch and d2l before it runs a cell. The fork
server imports them once; every kernel is a new child forked from it, so it starts with
those modules loaded but from a clean process state: the server never runs notebook code,
and no kernel sees another's changes. Each kernel dies with its fork server, and the server
with its grading process.

    python -m convgrader.kernels.inside.server serve SOCKET --parent PID   (beside the grader)
    python -m convgrader.kernels.inside.server serve --fd N [--sandboxed]  (in bubblewrap)

The grader's side starts it: ``convgrader.kernels.forkserver`` (warm kernels) and
``convgrader.kernels.sandbox`` (the same server as the sandbox's pid 1).
"""
import gc
import importlib
import io
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from convgrader.kernels import protocol
from convgrader.kernels.inside.kernel import (become_kernel, die_with, isolate_kernel,
                                              protect_from_kernels)
from convgrader.kernels.inside.reset import mount_points, reset_sandbox

# What a course notebook imports; importing it in the server is what makes kernels warm.
PRELOAD = ["torch", "torchvision", "d2l.torch", "matplotlib.pyplot",
           "matplotlib_inline.backend_inline", "pandas", "ipykernel.kernelapp",
           "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger", "IPython",
           "pygments.styles.default", "PIL.PngImagePlugin", "convcourse.checks",
           "convcourse.drawing"]



def serve(listener: socket.socket, sandboxed: bool = False) -> NoReturn:
    """Import PRELOAD, then answer requests on the listening Unix socket, forever.

    Requests are JSON lines: ``{"op": "fork", "args", "cwd", "env"}`` forks a kernel and
    answers its pid, then "ready" once its sockets are bound; ``{"op": "ping"}`` answers
    once the imports are done; in a sandbox (``convgrader.kernels.sandbox``), ``{"op": "reset"}``
    kills every other process of the sandbox and empties its writable folders before the
    next kernel, and each kernel first enters namespaces of its own (``isolate_kernel``).
    Where they cannot be made, every request is answered ``{"error": why}``.
    """
    # Graders run one kernel per core: more OpenMP threads would only spin against the other
    # workers' kernels (a third of a kernel's CPU time here). Set before torch is imported.
    os.environ["OMP_NUM_THREADS"] = "1"
    isolate: Callable[[int | None], None] | None = None
    if sandboxed:
        protect_from_kernels()
        isolate = isolate_kernel
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
    mounts = mount_points()  # the sandbox as bubblewrap built it
    while True:
        connection, _ = listener.accept()
        with connection:
            request = protocol.read_request(connection)
            op = request.get("op")
            if op == protocol.FORK:
                server = os.getpid()
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    become_kernel(request, connection, server, isolate)  # never returns
                answer: dict[str, Any] = {"pid": pid}
            elif op == protocol.RESET and sandboxed:
                try:
                    left = reset_sandbox(mounts)
                except Exception as error:  # say so: the grader builds a new sandbox
                    left = [f"an error ({type(error).__name__}: {error})"]
                answer = {"reset": not left, "left": left}
            else:
                answer = {"pong": True}
            protocol.send(connection, answer)


def _try_in_child(function: Callable[[], object]) -> str | None:
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
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    return said or None


def _refuse_forever(listener: socket.socket, reason: str) -> NoReturn:
    while True:
        connection, _ = listener.accept()
        with connection:
            protocol.send(connection, {"error": reason})


def _rehearse() -> None:
    """Do once what every kernel does first, so that kernels find it done (lazily loaded
    fonts, image plugins, operator tables, traceback formatting). No notebook code runs."""
    # Not at the top: torch must be imported after serve() has set OMP_NUM_THREADS (PRELOAD
    # has imported these by now, so here they are only looked up).
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


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"] and argv[1:2] == ["--fd"]:
        # The listening socket was opened by the caller (outside the sandbox) and inherited.
        listener = socket.socket(fileno=int(argv[2]))
        serve(listener, sandboxed="--sandboxed" in argv)
    elif argv[:1] == ["serve"] and len(argv) == 4 and argv[2] == "--parent":
        die_with(int(argv[3]))
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(argv[1])  # at once: clients may connect, and are answered once it imported
        listener.listen(16)
        serve(listener)
    else:
        sys.exit("usage: python -m convgrader.kernels.inside.server "
                 "serve SOCKET --parent PID | serve --fd N [--sandboxed]")


if __name__ == "__main__":
    main()
