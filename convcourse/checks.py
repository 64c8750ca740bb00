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
import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
# torch's own context manager for print options (it restores what was set before).
from torch._tensor_str import printoptions

from convcourse import records
# observe and Reported are part of this module's interface: checks are made on them.
from convcourse.records import Reported, observe, plain

_RTOL = 1e-4
_ATOL = 1e-4
_made: list[str] | None = None  # the checks made so far, inside ``recording``


class CheckFailed(AssertionError):
    """A student's result is wrong; the message says how."""


def _describe(record: dict[str, Any], detailed: bool) -> str:
    """What came back, in words, from an observation."""
    kind = record["kind"]
    if kind == records.TENSOR:
        return (f"a tensor of shape {tuple(record['shape'])} and dtype {record['dtype']}"
                if detailed else "a tensor of another shape or dtype")
    if not detailed:
        return {records.INTS: "a sequence of ints",
                records.ERROR: "an exception (it raised one)"}.get(
            kind, "something else")
    if kind == records.INTS:
        return f"{tuple(record['values'])}"
    if kind == records.INT:
        return f"the int {record['value']}"
    if kind == records.OTHER:
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
def recording() -> Iterator[list[str]]:
    """Within this block, every check made appends its ``what`` to the list it yields."""
    global _made
    previous, _made = _made, []
    try:
        yield _made
    finally:
        _made = previous


def _observation(got: object, what: str) -> tuple[dict[str, Any], bool]:
    """The observation a check judges, and whether its message may quote it; a failed call
    (an exception, a time limit) fails the check here."""
    if _made is not None:
        _made.append(what)
    if not isinstance(got, Reported):  # in the student's notebook: observed here
        got = Reported(observe(got))
    record, detailed = got.record, got.detailed
    kind = record["kind"]
    if kind == records.ERROR:
        raise CheckFailed(f"{what} raised {record['ename']}: {record['evalue']}" if detailed
                          else f"{what} raised an exception.")
    if kind == records.MISSING:
        raise CheckFailed(f"{what}: the function is not defined in the notebook (did its "
                          "cell run?).")
    if kind in records.GRADER_KINDS:
        raise CheckFailed(f"{what} {record['reason']}")
    if kind == records.UNREADABLE:
        raise CheckFailed(f"{what}: the grader could not read what the function returned "
                          "(the kernel sent a malformed result).")
    return record, detailed


def check_tensor(got: object, expected: object, what: str, rtol: float = _RTOL,
                 atol: float = _ATOL) -> None:
    """Fail unless ``got`` is a floating tensor with the shape and values of ``expected``.

    ``what`` names the call in the message, for example ``"corr2d_multi_in(X, K)"``.
    """
    record, detailed = _observation(got, what)
    expected = plain(torch.as_tensor(expected)).to(torch.float64)
    if record["kind"] != records.TENSOR:
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
    values = record["values"]  # a new name: ``got`` is the call's result, any object
    if values is None:
        raise CheckFailed(f"{what} is too large to check.")
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    try:
        torch.testing.assert_close(values, expected, rtol=rtol, atol=atol * scale)
    except AssertionError:
        if not detailed:
            raise CheckFailed(f"{what} has the wrong values.") from None
        wrong = ~torch.isclose(values, expected, rtol=rtol, atol=atol * scale)
        first = tuple(int(i) for i in wrong.nonzero()[0])
        with printoptions(precision=4, sci_mode=False):
            detail = f"expected\n{expected.float()}\ngot\n{values.float()}"
        raise CheckFailed(
            f"{what} has the wrong values: {int(wrong.sum())} of {wrong.numel()} elements "
            f"differ; at index {first} expected {expected[first].item():g}, "
            f"got {values[first].item():g}.\n{detail}") from None


def check_shape_tuple(got: object, expected: Iterable[int], what: str) -> None:
    """Fail unless ``got`` is a tuple (or list) of Python ints equal to ``expected``."""
    record, detailed = _observation(got, what)
    expected = tuple(expected)
    if record["kind"] != records.INTS:
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


def check_int(got: object, expected: int, what: str) -> None:
    """Fail unless ``got`` is a Python int (a numpy integer will do) equal to ``expected``."""
    record, detailed = _observation(got, what)
    if record["kind"] != records.INT:
        hint = ""
        if record["kind"] == records.TENSOR or record.get("type") == "builtins.float":
            hint = "\nReturn a Python int: use int(...) (or .item() on a tensor)."
        raise CheckFailed(f"{what} should return an int like {expected}, "
                          f"but returned {_describe(record, detailed)}.{hint}")
    if record["value"] != expected:
        got_value = f", got {record['value']}" if detailed else ""
        raise CheckFailed(f"{what}: expected {expected}{got_value}.")


def random_tensor(generator: torch.Generator, *shape: int) -> torch.Tensor:
    """A float32 tensor of small integers, drawn from ``generator`` (exact in float32)."""
    return torch.randint(-4, 5, shape, generator=generator).to(torch.float32)
