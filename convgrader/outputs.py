"""What a grading kernel's messages may bring into the grader and into a notebook.

The kernel is hostile: it knows the session key (kernel.json), so it can send any ZeroMQ
message on any channel, with any type, fields and nesting. Counting characters of strings
let structure through for free (five display messages whose metadata held 2,000,000 empty
lists each counted 0 and cost the grader 1.7 GB), a string ``execution_count`` made the
autograded notebook invalid (no grade at all), and a message nested a million lists deep
makes ``json.loads`` raise ``RecursionError``. So:

- ``BoundedSession`` (the grading client's session) refuses a message before parsing it
  when its frames are over ``max_message_bytes``, or hold more than ``max_containers`` lists
  and objects or nest deeper than ``max_depth`` (counted on the bytes, strings excluded);
  one it cannot read (no delimiter, bad signature, invalid JSON, fields of the wrong type)
  too. A refused message is never an exception: it becomes a small message of type
  ``REFUSED`` (or, for a reply, an error reply) that the grader turns into a one-line note.
  Every message it lets through carries ``wire_bytes``, its size on the wire, so the
  output budget counts every byte (data, metadata, transient, JSON structure).
- ``clean_output`` rebuilds an output from validated values only, by an allow-list: the
  grader's ``GuardedExecute`` keeps what it returns, and ``SanitizeSubmission`` applies it
  again to stored notebooks (autograde and feedback, so notebooks graded before are cleaned).
"""
import hmac
import json
import math
import os
import re
import socket
import threading
from typing import Any, Iterable

import zmq

from jupyter_client.session import Session
from nbformat.notebooknode import NotebookNode
from traitlets import Integer

# What the course's notebooks display (text, tables, formulas, matplotlib's figures).
TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex")
IMAGE_TYPES = ("image/png", "image/jpeg")
KEPT_TYPES = TEXT_TYPES + IMAGE_TYPES
STREAMS = ("stdout", "stderr")
MAX_DISPLAY_ID = 100  # characters of a display id (ipykernel's are 32 hex digits)
REFUSED = "refused_by_grader"  # the msg_type of a message the session refused
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")


def removed_note(types: Iterable[str]) -> str:
    return f"[{', '.join(types)} output removed by the grader]"


def _text(value: object) -> str | None:
    """A str, or a list of str joined (nbformat's multi-line form); None otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "".join(value)
    return None


def _dimension(value: object) -> bool:
    # JSON's numbers, exactly: not a bool, nor any other subclass.
    if type(value) is not int and type(value) is not float:
        return False
    return math.isfinite(value) and value > 0


def _data(data: object) -> tuple[dict[str, str], list[str]]:
    """(kept data, removed types): known types with text values; images in base64."""
    kept: dict[str, str] = {}
    removed: list[str] = []
    for mime, value in data.items() if isinstance(data, dict) else ():
        text = _text(value) if mime in KEPT_TYPES else None
        if text is not None and (mime not in IMAGE_TYPES or _BASE64.fullmatch(text)):
            kept[mime] = text
        else:
            removed.append(str(mime)[:100])
    return kept, removed


def _metadata(metadata: object, kept_types: Iterable[str]) -> dict[str, Any]:
    """Only an image's width and height (positive finite numbers) and matplotlib's
    needs_background: nbconvert writes them unquoted into an <img> tag."""
    kept: dict[str, Any] = {}
    if not isinstance(metadata, dict):
        return kept
    if metadata.get("needs_background") in ("light", "dark"):
        kept["needs_background"] = metadata["needs_background"]
    for mime in kept_types:
        if mime in IMAGE_TYPES and isinstance(metadata.get(mime), dict):
            size = {k: v for k, v in metadata[mime].items()
                    if k in ("width", "height") and _dimension(v)}
            if size:
                kept[mime] = size
    return kept


def clean_output(output_type: object, fields: object, execution_count: object = None
                 ) -> tuple[NotebookNode | None, str | None]:
    """(an output rebuilt from ``fields``' validated values, or None; what was dropped).

    ``fields`` is an IOPub message's content or a stored output; ``execution_count`` is the
    one an execute_result gets (the grader's, or the stored one once validated)."""
    if not isinstance(fields, dict):
        return None, f"a {output_type} output that is not an object"
    if output_type == "stream":
        text = _text(fields.get("text"))
        if fields.get("name") not in STREAMS or text is None:
            return None, "a stream output without a known name and text"
        return NotebookNode(output_type="stream", name=fields["name"], text=text), None
    if output_type == "error":
        ename, evalue = fields.get("ename"), fields.get("evalue")
        traceback = fields.get("traceback")
        if not isinstance(ename, str) or not isinstance(evalue, str) or \
                not isinstance(traceback, list) or \
                not all(isinstance(line, str) for line in traceback):
            return None, "an error output whose fields are not text"
        return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                            traceback=list(traceback)), None
    if output_type in ("display_data", "execute_result"):
        data, removed = _data(fields.get("data"))
        metadata = _metadata(fields.get("metadata"), data)
        if removed and not data:
            data["text/plain"] = removed_note(removed)
        output = NotebookNode(output_type=output_type, data=NotebookNode(data),
                              metadata=NotebookNode(metadata))
        if output_type == "execute_result":
            output.execution_count = execution_count \
                if type(execution_count) is int and execution_count >= 0 else None
        return output, (removed_note(removed) if removed else None)
    return None, f"an output of unknown type {str(output_type)[:40]!r}"


def display_id(content: dict[str, Any]) -> str | None:
    """The message's display id, if it is a short str."""
    transient = content.get("transient")
    found = transient.get("display_id") if isinstance(transient, dict) else None
    return found if isinstance(found, str) and 0 < len(found) <= MAX_DISPLAY_ID else None


def estimated_bytes(msg: dict[str, Any]) -> int | float:
    """A message's size when it did not come through ``BoundedSession`` (tests, nbclient's
    own replies): its JSON's length."""
    if "wire_bytes" in msg:
        return msg["wire_bytes"]
    try:
        return len(json.dumps([msg.get("header"), msg.get("parent_header"),
                               msg.get("metadata"), msg.get("content")], default=repr))
    except (RecursionError, ValueError):
        return float("inf")


# ---- the session: every message bounded before it is parsed ----

_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class Refused(Exception):
    """A message the session does not let through, and why (a short sentence)."""


def _shape(frame: bytes, max_containers: int, max_depth: int) -> None:
    """Raise Refused when the JSON ``frame`` holds too many lists and objects, or nests too
    deep; counted on its bytes outside strings, before any parsing."""
    if frame.count(b"[") + frame.count(b"{") <= max_depth:
        return
    brackets = _STRINGS.sub(b"", frame).translate(None, _NOT_BRACKETS)
    if len(brackets) > 2 * max_containers:
        raise Refused(f"a message holding over {max_containers:,} lists and objects")
    depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > max_depth:
            raise Refused(f"a message nested over {max_depth} levels deep")


class BoundedSession(Session):
    """jupyter_client's Session whose ``deserialize`` bounds a message's size and structure
    before parsing it, and never raises (see the module's docstring)."""

    max_message_bytes = Integer(
        4 * 2 ** 20, help="Bytes of one message (all its frames); a larger one is refused. "
                          "The largest honest one is a call's result, about 1.1 MB."
    ).tag(config=True)
    max_containers = Integer(
        10_000, help="Lists and objects in one message's JSON.").tag(config=True)
    max_depth = Integer(64, help="Nesting of one message's JSON.").tag(config=True)
    max_header_bytes = 64 * 2 ** 10

    @classmethod
    def like(cls, session: Session, **kwargs: Any) -> "BoundedSession":
        """A BoundedSession that signs and checks messages as ``session`` does."""
        return cls(key=session.key, signature_scheme=session.signature_scheme,
                   username=session.username, **kwargs)

    def feed_identities(self, msg_list: list[bytes] | list[zmq.Message], copy: bool = True
                        ) -> tuple[list[bytes], list[bytes] | list[zmq.Message]]:
        try:
            return super().feed_identities(msg_list, copy)
        except ValueError:  # no delimiter: deserialize refuses what it cannot read
            return [], [b"", b"{}", b"{}", b"{}", b"{}", b"no delimiter"]

    def deserialize(self, msg_list: list[bytes] | list[zmq.Message], content: bool = True,
                    copy: bool = True) -> dict[str, Any]:
        frames = [f if isinstance(f, bytes) else f.bytes for f in msg_list]
        size = sum(len(f) for f in frames)
        header, parent = {}, {}
        try:
            if len(frames) < 5:
                raise Refused("a malformed message")
            self._check_signature(frames, content)
            header = self._unpack(frames[1], "header", self.max_header_bytes)
            parent = self._unpack(frames[2], "parent header", self.max_header_bytes)
            if size > self.max_message_bytes:
                raise Refused(f"a message of {size:,} bytes (at most "
                              f"{self.max_message_bytes:,} are accepted)")
            message: dict[str, Any] = {
                "header": header, "msg_id": header.get("msg_id"),
                "msg_type": header.get("msg_type"), "parent_header": parent,
                "metadata": self._unpack(frames[3], "metadata"),
                "content": self._unpack(frames[4], "content") if content else frames[4],
                "buffers": [], "wire_bytes": size}
            if not isinstance(message["msg_type"], str) or len(message["msg_type"]) > 100:
                raise Refused("a message without a type")
            return _normalized(message) if content else message
        except Refused as refusal:
            return refused(header, parent, str(refusal), size)
        except Exception as error:  # noqa: BLE001 - a hostile message is refused, never raised
            return refused(header, parent, f"an unreadable message ({type(error).__name__})",
                           size)

    def _check_signature(self, frames: list[bytes], content: bool) -> None:
        if self.auth is None:
            return
        signature = frames[0]
        if not signature or signature in self.digest_history or \
                not hmac.compare_digest(signature, self.sign(frames[1:5])):
            raise Refused("a message without a valid signature")
        if content:
            self._add_digest(signature)

    def _unpack(self, frame: bytes, what: str, limit: int | None = None) -> dict[str, Any]:
        if limit is not None and len(frame) > limit:
            raise Refused(f"a message whose {what} is over {limit:,} bytes")
        _shape(frame, self.max_containers, self.max_depth)
        value = json.loads(frame.decode("utf8", "replace"))
        if not isinstance(value, dict):
            raise Refused(f"a message whose {what} is not an object")
        return value


_DISPLAYS = ("display_data", "execute_result", "update_display_data")


def _normalized(message: dict[str, Any]) -> dict[str, Any]:
    """The message, with the fields the grader's readers index (nbclient, the judge,
    jupyter_client) of the types they expect."""
    content = message["content"]
    if not isinstance(message["parent_header"].get("msg_id", ""), str):
        message["parent_header"] = {}
    kind = message["msg_type"]
    if kind.endswith("_reply") and content.get("status") not in ("ok", "error", "aborted"):
        raise Refused("a reply without a status")
    if kind == "status" and not isinstance(content.get("execution_state"), str):
        raise Refused("a status message without a state")
    if kind in _DISPLAYS:
        for field in ("data", "metadata", "transient"):
            if not isinstance(content.get(field, {}), dict):
                content[field] = {}
    return message


def refused(header: object, parent: object, reason: str, size: int = 0) -> dict[str, Any]:
    """The message that stands for one the session refused: ``REFUSED`` with the reason,
    or, in place of a reply, an error reply (so whoever waits for it is answered)."""
    kind = header.get("msg_type") if isinstance(header, dict) else None
    if not isinstance(parent, dict) or not isinstance(parent.get("msg_id", ""), str):
        parent = {}
    reason = f"output refused by the grader: {reason}."
    if isinstance(kind, str) and kind.endswith("_reply") and len(kind) <= 100:
        content = {"status": "error", "ename": "OutputRefused", "evalue": reason,
                   "traceback": [f"OutputRefused: {reason}"]}
    else:
        kind, content = REFUSED, {"reason": reason}
    return {"header": {"msg_type": kind}, "msg_id": None, "msg_type": kind,
            "parent_header": parent, "metadata": {}, "content": content, "buffers": [],
            "wire_bytes": size}


# ---- the connection: no message buffered whole in the grader beyond a limit ----

class FrameLimit:
    """Reads a ZeroMQ (ZMTP 3) byte stream as it passes: False once one message's frames add
    up to more than ``limit`` bytes (each counted with what it costs the grader, so millions
    of empty frames are not free either) or ``MAX_FRAMES``, or the stream is not ZMTP 3.

    ZeroMQ hands a multipart message over only once all its frames have arrived, and its
    ``MAXMSGSIZE`` limits each frame, not their number: a kernel that sent one message of a
    hundred 50 MB frames (one buffer, sent without copying) had the grader hold 5 GB."""

    GREETING = 64
    MAX_FRAMES = 64  # a Jupyter message has six frames and its buffers
    FRAME_COST = 128  # bytes the grader spends per frame (ZeroMQ's and Python's objects)

    def __init__(self, limit: int):
        self.limit, self.total, self.frames = limit, 0, 0
        self.head, self.skip, self.greeted = bytearray(), 0, False

    def feed(self, data: bytes) -> bool:
        view, at = memoryview(data), 0
        while at < len(view):
            if self.skip:
                step = min(self.skip, len(view) - at)
                self.skip, at = self.skip - step, at + step
                continue
            self.head.append(view[at])
            at += 1
            if not self.greeted:
                if len(self.head) == self.GREETING:
                    if self.head[0] != 0xFF or self.head[9] != 0x7F or self.head[10] < 3:
                        return False
                    self.greeted, self.head = True, bytearray()
                continue
            flags = self.head[0]
            if len(self.head) < (9 if flags & 0x02 else 2):
                continue
            size = int.from_bytes(self.head[1:], "big")
            self.head = bytearray()
            if flags & 0x04:  # a command (the handshake's READY, a subscription, a ping)
                if size > 2 ** 16:
                    return False
            else:
                self.total += size + self.FRAME_COST
                self.frames += 1
                if self.total > self.limit or self.frames > self.MAX_FRAMES:
                    return False
                if not flags & 0x01:  # the message's last frame
                    self.total = self.frames = 0
            self.skip = size
        return True


class Relay:
    """A local endpoint the grader's client connects to instead of the kernel's: bytes pass
    unchanged both ways, and the connection is cut once a message from the kernel is over
    ``limit`` bytes in all (``FrameLimit``), before ZeroMQ has buffered it. The relay then
    closes, so the channel stays silent (ZeroMQ would connect again by itself, and the
    kernel, seeing the same subscription twice, would not greet the new channel that
    ``GuardedExecute.reconnect`` opens through a relay of its own)."""

    def __init__(self, url: str, limit: int, folder: str):
        self.limit, self.closed = limit, False
        self.connections: set[socket.socket] = set()
        # The kernel's end: (AF_INET, (host, port)) or (AF_UNIX, path).
        self.target: tuple[socket.AddressFamily, tuple[str, int] | str]
        transport, address = url.split("://", 1)
        if transport == "tcp":
            host, port = address.rsplit(":", 1)
            self.target = (socket.AF_INET, (host, int(port)))
            self.listener = socket.create_server(("127.0.0.1", 0))
            self.url = "tcp://127.0.0.1:%d" % self.listener.getsockname()[1]
        else:
            self.target = (socket.AF_UNIX, address)
            path = os.path.join(folder, f"relay-{len(os.listdir(folder))}")
            self.listener = socket.socket(socket.AF_UNIX)
            self.listener.bind(path)
            self.listener.listen()
            self.url = f"ipc://{path}"
        threading.Thread(target=self._serve, daemon=True, name=f"relay {url}").start()

    def _serve(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True,
                             name="relay connection").start()

    def _relay(self, client: socket.socket) -> None:
        family, address = self.target
        kernel = socket.socket(family)
        self.connections |= {client, kernel}
        try:
            kernel.connect(address)
        except OSError:
            self._end(client, kernel)
            return
        # One thread per direction: a side that does not read (the grader leaves the replies
        # to its test calls unread) must not stop the other direction.
        threading.Thread(target=self._pump, args=(client, kernel, None), daemon=True,
                         name="relay to the kernel").start()
        self._pump(kernel, client, FrameLimit(self.limit))

    def _pump(self, source: socket.socket, destination: socket.socket,
              frames: FrameLimit | None) -> None:
        try:
            while not self.closed:
                data = source.recv(2 ** 16)
                if not data:
                    break
                if frames is not None and not frames.feed(data):
                    self.close()  # silent from now on, as ZeroMQ's MAXMSGSIZE leaves it
                    break
                destination.sendall(data)
        except OSError:
            pass
        finally:
            self._end(source, destination)

    def _end(self, *ends: socket.socket) -> None:
        for end in ends:
            self.connections.discard(end)
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def close(self) -> None:
        self.closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        except OSError:
            pass
        self.listener.close()
        for end in list(self.connections):
            try:
                end.shutdown(2)
            except OSError:
                pass
