"""The records a grading kernel and the grader exchange, in one place.

The grader calls a student's function in the kernel with arguments it encodes
(``encode_call``; the kernel ``decode_call``s them), and the kernel answers with a record of
what the function did: an observation of its result (``observe``), the exception it raised
(``raised``), or that it is not defined (``MISSING``), published under the MIME type
``MIME``. The grader reads a record only through ``Reported``, which validates every field;
it adds its own conclusions about a call that brought nothing usable back
(``Reported.failure``: ``TIMEOUT``, ``STOPPED``, ``NO_RESULT``), and a record that does not
validate becomes ``UNREADABLE``.

In the student's own notebook there is no grader: a check observes the result itself
(``convcourse.checks``). Nothing here is trusted in the kernel: student code may replace
any of it there, and then it only changes what its own function is reported to return.
"""
import base64
import io
import numbers
import re
from typing import Any, cast

import torch

MIME = "application/vnd.convcourse.call+json"

# What a kernel may report of a call.
TENSOR, INTS, INT, OTHER, ERROR, MISSING = "tensor", "ints", "int", "other", "error", "missing"
KERNEL_KINDS = (TENSOR, INTS, INT, OTHER, ERROR, MISSING)
# The grader's own conclusions about a call; a kernel cannot send these.
TIMEOUT, STOPPED, NO_RESULT = "timeout", "stopped", "no result"
GRADER_KINDS = (TIMEOUT, STOPPED, NO_RESULT)
# A record from the kernel that did not validate.
UNREADABLE = "unreadable"

# Results larger than this are observed by shape only: no expected result is this big.
MAX_OBSERVED_ELEMENTS = 100_000
MAX_DIMENSIONS = 8
MAX_MESSAGE = 300
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,79}")


def encode_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The arguments of a call as text (torch's pickle, in base64), for ``decode_call``."""
    buffer = io.BytesIO()
    torch.save((args, kwargs), buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_call(payload: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` of a call, in the kernel."""
    # The payload comes from the grader, never from a student: a full unpickler is fine.
    return torch.load(io.BytesIO(base64.b64decode(payload)), weights_only=False)


def raised(error: BaseException) -> dict[str, Any]:
    """The record of a call that raised ``error``."""
    return {"kind": ERROR, "ename": type(error).__name__, "evalue": _message(error)}


def missing() -> dict[str, Any]:
    """The record of a call of a function the notebook does not define (the grader words the
    message itself)."""
    return {"kind": MISSING}


def _message(error: BaseException) -> str:
    try:
        return str(error)[:MAX_MESSAGE]
    except Exception:
        return "(its message could not be read)"


def plain(tensor: torch.Tensor) -> torch.Tensor:
    """A plain ``torch.Tensor`` copy of ``tensor``, so a subclass cannot answer for itself."""
    with torch._C.DisableTorchFunction():
        return torch.Tensor.as_subclass(tensor, torch.Tensor).detach().cpu()


def _type_name(value: object) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def observe(got: object) -> dict[str, Any]:
    """What a check needs of a result, as JSON-ready data that holds no student object."""
    if issubclass(type(got), torch.Tensor):
        # Asked of the type, which a student's class cannot fake (isinstance asks
        # ``__class__``), so mypy does not narrow ``got``: cast.
        tensor = plain(cast(torch.Tensor, got))
        record = {"kind": TENSOR, "shape": list(tensor.shape), "dtype": str(tensor.dtype),
                  "floating": tensor.is_floating_point(), "values": None}
        if tensor.numel() <= MAX_OBSERVED_ELEMENTS:
            data = tensor.to(torch.float64).contiguous().numpy().tobytes()
            record["values"] = base64.b64encode(data).decode("ascii")
        return record
    if isinstance(got, numbers.Integral) and not isinstance(got, bool) and \
            abs(int(got)) < 2 ** 63:
        return {"kind": INT, "value": int(got)}
    if type(got) is float:
        return {"kind": OTHER, "type": "builtins.float", "floats": [got]}
    if isinstance(got, (tuple, list)) and len(got) <= MAX_DIMENSIONS and all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in got):
        return {"kind": INTS, "values": [int(n) for n in got]}
    record = {"kind": OTHER, "type": _type_name(got)}
    if isinstance(got, (tuple, list)) and len(got) <= MAX_DIMENSIONS:
        record["items"] = [_type_name(item) for item in got]
        if all(type(item) is float for item in got):  # (4.0, 4.0): say so, values included
            record["floats"] = [float(item) for item in got]
    return record


class Reported:
    """A student's result as the grader received it from the kernel: an observation
    (``observe``), or what went wrong with the call, checked to be well formed.

    ``detailed`` is False for calls on hidden inputs: the student's values, text and type
    names then never appear in a message, only what the grader knows.

    A kernel reports what its function did (``KERNEL_KINDS``), never why a call failed: a
    reason is text the kernel could fill with a hidden input. The grader's own conclusions
    about a call (it timed out, the kernel stopped, nothing came back) are made with
    ``Reported.failure`` and are the only records with a reason.
    """

    KERNEL_KINDS = KERNEL_KINDS
    GRADER_KINDS = GRADER_KINDS

    def __init__(self, record: dict[str, Any], detailed: bool = True) -> None:
        self.detailed = detailed
        try:
            self.record = self._valid(record)
        except (KeyError, TypeError, ValueError):
            self.record = {"kind": UNREADABLE}

    @classmethod
    def failure(cls, kind: str, reason: object, detailed: bool = True) -> "Reported":
        """The grader's own word on a call that brought back no result: ``kind`` is one of
        ``GRADER_KINDS``, ``reason`` the grader's text, ending the sentence "<call> ..."."""
        if kind not in cls.GRADER_KINDS:
            raise ValueError(kind)
        reported = cls.__new__(cls)
        reported.detailed, reported.record = detailed, {"kind": kind, "reason": str(reason)}
        return reported

    @staticmethod
    def _valid(record: dict[str, Any]) -> dict[str, Any]:
        kind = record["kind"]
        if kind == TENSOR:
            shape = [int(n) for n in record["shape"]]
            if len(shape) > MAX_DIMENSIONS or min(shape, default=0) < 0:
                raise ValueError("shape")
            count = 1
            for n in shape:
                count *= n
            values = None
            if record.get("values") is not None and count <= MAX_OBSERVED_ELEMENTS:
                data = base64.b64decode(str(record["values"]), validate=True)
                if len(data) != 8 * count:
                    raise ValueError("values")
                values = torch.frombuffer(bytearray(data), dtype=torch.float64).reshape(shape) \
                    if count else torch.zeros(shape, dtype=torch.float64)
            return {"kind": kind, "shape": shape, "floating": record["floating"] is True,
                    "dtype": _safe_name(record.get("dtype")), "values": values}
        if kind == INTS:
            values = record["values"]
            if len(values) > MAX_DIMENSIONS or not all(type(n) is int for n in values):
                raise ValueError("ints")
            return {"kind": kind, "values": values}
        if kind == INT:
            value = record["value"]
            if type(value) is not int or abs(value) >= 2 ** 63:
                raise ValueError("int")
            return {"kind": kind, "value": value}
        if kind == OTHER:
            items, floats = record.get("items"), record.get("floats")
            if floats is not None and not (isinstance(floats, list) and all(
                    type(x) in (float, int) for x in floats[:MAX_DIMENSIONS])):
                raise ValueError("floats")
            return {"kind": kind, "type": _safe_name(record.get("type")),
                    "items": [_safe_name(i) for i in items[:MAX_DIMENSIONS]]
                    if isinstance(items, list) else None,
                    "floats": [float(x) for x in floats[:MAX_DIMENSIONS]]
                    if floats is not None else None}
        if kind == ERROR:
            return {"kind": kind, "ename": _safe_name(record.get("ename")),
                    "evalue": str(record.get("evalue", ""))[:MAX_MESSAGE]}
        if kind == MISSING:  # the kernel's own words are not kept: see the class
            return {"kind": kind}
        raise ValueError(kind)  # a grader's kind too: the kernel cannot speak for the grader


def _safe_name(name: object) -> str:
    return name if isinstance(name, str) and _NAME.fullmatch(name) else "another type"
