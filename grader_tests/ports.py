"""Free TCP ports on loopback for the servers the tests start (JupyterLab, JupyterHub,
PostgreSQL, Slurm), and stopping such a server with what it started."""
import contextlib
import os
import signal
import socket
import subprocess


def free_ports(count=1):
    """``count`` distinct ports free on 127.0.0.1 now: all are held open while they are
    chosen, so none is picked twice."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]


def stop_process_group(process, timeout):
    """Stop ``process`` (a Popen started with start_new_session=True) and its process group:
    SIGTERM, then SIGKILL if it is still running after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
