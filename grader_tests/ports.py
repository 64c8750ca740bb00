"""Free TCP ports on loopback, for the servers the tests start (JupyterLab, PostgreSQL, Slurm)."""
import contextlib
import socket


def free_ports(count=1):
    """``count`` distinct ports free on 127.0.0.1 now: all are held open while they are
    chosen, so none is picked twice."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
