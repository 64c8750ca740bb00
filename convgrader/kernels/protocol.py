"""The fork server's protocol: one JSON line each way on a Unix socket.

The grader's side (``forkserver.ForkServer``, ``sandbox.Sandbox``) asks, the server inside
the sandbox or beside the grader (``inside.server``) answers:

- ``{"op": "ping"}``: ``{"pong": true}`` once the server has imported what kernels use;
- ``{"op": "fork", "args", "cwd", "env"[, "rlimits", "shm_size"]}``: ``{"pid": N}`` (the
  kernel's pid as the server sees it), then ``{"ready": true}`` from the kernel once its
  sockets are bound (nothing if it died first);
- ``{"op": "reset"}`` (in a sandbox): ``{"reset": bool, "left": [what stayed, ...]}``;
- a server that cannot start kernels answers every request ``{"error": why}``.

Both sides import this module; it imports nothing of either.
"""
import json
import socket
from typing import Any

from convgrader.errors import KernelServerError

PING, FORK, RESET = "ping", "fork", "reset"


def read_line(connection: socket.socket) -> str:
    """One line (without its end) from a socket; empty if it closed first."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode()


def read_request(connection: socket.socket) -> dict[str, Any]:
    """The request on ``connection`` (an empty one if the grader closed it first)."""
    return json.loads(read_line(connection) or "{}")


def send(connection: socket.socket, message: dict[str, Any]) -> None:
    """One message as a JSON line."""
    connection.sendall(json.dumps(message).encode() + b"\n")


def ask(socket_path: str, request: dict[str, Any],
        timeout: float | None = None) -> dict[str, Any]:
    """Send ``request`` to the fork server listening on ``socket_path``; its answer (for a
    fork, once the kernel is ready)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        client.connect(socket_path)
        send(client, request)
        answer = json.loads(read_line(client) or "null")
        if request.get("op") == FORK:
            read_line(client)  # the kernel's "ready", or nothing if it died first: go on
        if not answer:
            raise KernelServerError("the fork server closed the connection without answering")
        return answer
