"""Checks for the notebooks' test cells, with messages a student can act on.

Every check looks at the type first, then the shape, then the values, and says what was
expected and what came back. Values are compared as float64 with a tolerance, so any
floating dtype and any correct way of computing passes.

A check judges an *observation* of the student's result: plain data (``observe``) that
holds no student object. In the student's own notebook the check observes the result it
is given. While grading, test cells do not run in the student's kernel at all: the grader
runs them in its own process (``convgrader.judge``), where the student's functions are
called in the kernel and come back as ``Reported`` observations, so the expected values
never exist where student code runs.
"""
import base64
import contextlib
import numbers
import re

import torch
# torch's own context manager for print options (it restores what was set before).
from torch._tensor_str import printoptions

# Results larger than this are observed by shape only: no expected result is this big.
MAX_OBSERVED_ELEMENTS = 100_000
MAX_DIMENSIONS = 8
_RTOL = 1e-4
_ATOL = 1e-4
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,79}")
_made = None  # the checks made so far, inside ``recording``


class CheckFailed(AssertionError):
    """A student's result is wrong; the message says how."""


def _plain(tensor):
    """A plain ``torch.Tensor`` copy of ``tensor``, so a subclass cannot answer for itself."""
    with torch._C.DisableTorchFunction():
        return torch.Tensor.as_subclass(tensor, torch.Tensor).detach().cpu()


def _type_name(value):
    return f"{type(value).__module__}.{type(value).__qualname__}"


def observe(got):
    """What a check needs of a result, as JSON-ready data that holds no student object."""
    if issubclass(type(got), torch.Tensor):
        plain = _plain(got)
        record = {"kind": "tensor", "shape": list(plain.shape), "dtype": str(plain.dtype),
                  "floating": plain.is_floating_point(), "values": None}
        if plain.numel() <= MAX_OBSERVED_ELEMENTS:
            data = plain.to(torch.float64).contiguous().numpy().tobytes()
            record["values"] = base64.b64encode(data).decode("ascii")
        return record
    if isinstance(got, numbers.Integral) and not isinstance(got, bool) and \
            abs(int(got)) < 2 ** 63:
        return {"kind": "int", "value": int(got)}
    if type(got) is float:
        return {"kind": "other", "type": "builtins.float", "floats": [got]}
    if isinstance(got, (tuple, list)) and len(got) <= MAX_DIMENSIONS and all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in got):
        return {"kind": "ints", "values": [int(n) for n in got]}
    record = {"kind": "other", "type": _type_name(got)}
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

    KERNEL_KINDS = ("tensor", "ints", "int", "other", "error", "missing")
    GRADER_KINDS = ("timeout", "stopped", "no result")

    def __init__(self, record, detailed=True):
        self.detailed = detailed
        try:
            self.record = self._valid(record)
        except (KeyError, TypeError, ValueError):
            self.record = {"kind": "unreadable"}

    @classmethod
    def failure(cls, kind, reason, detailed=True):
        """The grader's own word on a call that brought back no result: ``kind`` is one of
        ``GRADER_KINDS``, ``reason`` the grader's text, ending the sentence "<call> ..."."""
        if kind not in cls.GRADER_KINDS:
            raise ValueError(kind)
        reported = cls.__new__(cls)
        reported.detailed, reported.record = detailed, {"kind": kind, "reason": str(reason)}
        return reported

    @staticmethod
    def _valid(record):
        kind = record["kind"]
        if kind == "tensor":
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
        if kind == "ints":
            values = record["values"]
            if len(values) > MAX_DIMENSIONS or not all(type(n) is int for n in values):
                raise ValueError("ints")
            return {"kind": kind, "values": values}
        if kind == "int":
            value = record["value"]
            if type(value) is not int or abs(value) >= 2 ** 63:
                raise ValueError("int")
            return {"kind": kind, "value": value}
        if kind == "other":
            items, floats = record.get("items"), record.get("floats")
            if floats is not None and not (isinstance(floats, list) and all(
                    type(x) in (float, int) for x in floats[:MAX_DIMENSIONS])):
                raise ValueError("floats")
            return {"kind": kind, "type": _safe_name(record.get("type")),
                    "items": [_safe_name(i) for i in items[:MAX_DIMENSIONS]]
                    if isinstance(items, list) else None,
                    "floats": [float(x) for x in floats[:MAX_DIMENSIONS]]
                    if floats is not None else None}
        if kind == "error":
            return {"kind": kind, "ename": _safe_name(record.get("ename")),
                    "evalue": str(record.get("evalue", ""))[:300]}
        if kind == "missing":  # the kernel's own words are not kept: see the class
            return {"kind": kind}
        raise ValueError(kind)  # a grader's kind too: the kernel cannot speak for the grader


def _safe_name(name):
    return name if isinstance(name, str) and _NAME.fullmatch(name) else "another type"


def _describe(record, detailed):
    """What came back, in words, from an observation."""
    kind = record["kind"]
    if kind == "tensor":
        return (f"a tensor of shape {tuple(record['shape'])} and dtype {record['dtype']}"
                if detailed else "a tensor of another shape or dtype")
    if not detailed:
        return {"ints": "a sequence of ints", "error": "an exception (it raised one)"}.get(
            kind, "something else")
    if kind == "ints":
        return f"{tuple(record['values'])}"
    if kind == "int":
        return f"the int {record['value']}"
    if kind == "other":
        items, floats = record.get("items"), record.get("floats")
        if floats and record["type"] == "builtins.float":
            return f"a float, {floats[0]!r}"
        if floats:
            values = tuple(floats) if record["type"] == "builtins.tuple" else floats
            return f"a {record['type'].removeprefix('builtins.')} of floats, {values!r}"
        if items:
            return f"a {record['type']} of {', '.join(items)}"
        return f"a {record['type']}"
    return kind


@contextlib.contextmanager
def recording():
    """Within this block, every check made appends its ``what`` to the list it yields."""
    global _made
    previous, _made = _made, []
    try:
        yield _made
    finally:
        _made = previous


def _observation(got, what):
    """The observation a check judges, and whether its message may quote it; a failed call
    (an exception, a time limit) fails the check here."""
    if _made is not None:
        _made.append(what)
    if not isinstance(got, Reported):  # in the student's notebook: observed here
        got = Reported(observe(got))
    record, detailed = got.record, got.detailed
    kind = record["kind"]
    if kind == "error":
        raise CheckFailed(f"{what} raised {record['ename']}: {record['evalue']}" if detailed
                          else f"{what} raised an exception.")
    if kind == "missing":
        raise CheckFailed(f"{what}: the function is not defined in the notebook (did its "
                          "cell run?).")
    if kind in ("timeout", "stopped", "no result"):
        raise CheckFailed(f"{what} {record['reason']}")
    if kind == "unreadable":
        raise CheckFailed(f"{what}: the grader could not read what the function returned "
                          "(the kernel sent a malformed result).")
    return record, detailed


def check_tensor(got, expected, what, rtol=_RTOL, atol=_ATOL):
    """Fail unless ``got`` is a floating tensor with the shape and values of ``expected``.

    ``what`` names the call in the message, for example ``"corr2d_multi_in(X, K)"``.
    """
    record, detailed = _observation(got, what)
    expected = _plain(torch.as_tensor(expected)).to(torch.float64)
    if record["kind"] != "tensor":
        raise CheckFailed(
            f"{what} should return a torch.Tensor of shape {tuple(expected.shape)}, "
            f"but returned {_describe(record, detailed)}.")
    if tuple(record["shape"]) != tuple(expected.shape):
        got_shape = f", got {tuple(record['shape'])}" if detailed else ""
        raise CheckFailed(
            f"{what} has the wrong shape: expected {tuple(expected.shape)}{got_shape}.")
    if not record["floating"]:
        raise CheckFailed(
            f"{what} should be a floating-point tensor, got {_describe(record, detailed)}.")
    got = record["values"]
    if got is None:
        raise CheckFailed(f"{what} is too large to check.")
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    try:
        torch.testing.assert_close(got, expected, rtol=rtol, atol=atol * scale)
    except AssertionError:
        if not detailed:
            raise CheckFailed(f"{what} has the wrong values.") from None
        wrong = ~torch.isclose(got, expected, rtol=rtol, atol=atol * scale)
        first = tuple(int(i) for i in wrong.nonzero()[0])
        with printoptions(precision=4, sci_mode=False):
            detail = f"expected\n{expected.float()}\ngot\n{got.float()}"
        raise CheckFailed(
            f"{what} has the wrong values: {int(wrong.sum())} of {wrong.numel()} elements "
            f"differ; at index {first} expected {expected[first].item():g}, "
            f"got {got[first].item():g}.\n{detail}") from None


def check_shape_tuple(got, expected, what):
    """Fail unless ``got`` is a tuple (or list) of Python ints equal to ``expected``."""
    record, detailed = _observation(got, what)
    expected = tuple(expected)
    if record["kind"] != "ints":
        hint = ""
        if record.get("items") and any(i in ("builtins.float", "torch.Tensor")
                                       for i in record["items"]):
            hint = ("\nIts elements must be Python ints: use integer division (//) or int(...)"
                    " on each.")
        raise CheckFailed(f"{what} should return a tuple of ints like {expected}, "
                          f"but returned {_describe(record, detailed)}.{hint}")
    if tuple(record["values"]) != expected:
        got_values = f", got {tuple(record['values'])}" if detailed else ""
        raise CheckFailed(f"{what}: expected {expected}{got_values}.")


def check_int(got, expected, what):
    """Fail unless ``got`` is a Python int (a numpy integer will do) equal to ``expected``."""
    record, detailed = _observation(got, what)
    if record["kind"] != "int":
        hint = ""
        if record["kind"] == "tensor" or record.get("type") == "builtins.float":
            hint = "\nReturn a Python int: use int(...) (or .item() on a tensor)."
        raise CheckFailed(f"{what} should return an int like {expected}, "
                          f"but returned {_describe(record, detailed)}.{hint}")
    if record["value"] != expected:
        got_value = f", got {record['value']}" if detailed else ""
        raise CheckFailed(f"{what}: expected {expected}{got_value}.")


def random_tensor(generator, *shape):
    """A float32 tensor of small integers, drawn from ``generator`` (exact in float32)."""
    return torch.randint(-4, 5, shape, generator=generator).to(torch.float32)
