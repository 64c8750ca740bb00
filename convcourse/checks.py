"""Checks for the notebooks' test cells, with messages a student can act on.

Every check looks at the type first, then the shape, then the values, and says what was
expected and what came back. Values are compared as float64 with a tolerance, so any
floating dtype and any correct way of computing passes.

While ``nbgrader autograde`` runs a notebook (it sets ``NBGRADER_EXECUTION=autograde``),
each check also publishes what it observed of the student's result as plain data
(``RECORD_MIME``). The grader then re-runs the test cell in its own process with those
records (``replaying``): the expected values are computed and compared there, where code
in the student's kernel cannot patch them (see ``convcourse.grading.VerifyChecks``).
"""
import base64
import contextlib
import numbers
import os

import torch
# torch's own context manager for print options (it restores what was set before).
from torch._tensor_str import printoptions

RECORD_MIME = "application/vnd.convcourse.check+json"
# Results larger than this are recorded by shape only: no expected result is this big.
MAX_RECORDED_ELEMENTS = 100_000
_RTOL = 1e-4
_ATOL = 1e-4
_replay = None  # the records being replayed, inside ``replaying``


class CheckFailed(AssertionError):
    """A student's result is wrong; the message says how."""


def _plain(tensor):
    """A plain ``torch.Tensor`` copy of ``tensor``, so a subclass cannot answer for itself."""
    with torch._C.DisableTorchFunction():
        return torch.Tensor.as_subclass(tensor, torch.Tensor).detach().cpu()


def _describe(value):
    if issubclass(type(value), torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"a {type(value).__module__}.{type(value).__qualname__}: {value!r:.200}"


def observe(got):
    """What a check needs of a result, as JSON-ready data that holds no student object."""
    record = {"description": _describe(got)}
    if issubclass(type(got), torch.Tensor):
        plain = _plain(got)
        record.update(kind="tensor", shape=list(plain.shape),
                      floating=plain.is_floating_point(), values=None)
        if plain.numel() <= MAX_RECORDED_ELEMENTS:
            data = plain.to(torch.float64).contiguous().numpy().tobytes()
            record["values"] = base64.b64encode(data).decode("ascii")
    elif isinstance(got, (tuple, list)) and all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in got):
        record.update(kind="ints", values=[int(n) for n in got])
    else:
        record.update(kind="other")
    return record


def _values(record):
    data = base64.b64decode(record["values"])
    return torch.frombuffer(bytearray(data), dtype=torch.float64).reshape(record["shape"])


def _observed(got, what):
    """The observation a check judges: replayed inside the grader, else taken from ``got``."""
    if _replay is not None:
        return _replay.take(what)
    record = observe(got)
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        from IPython.display import publish_display_data
        publish_display_data({RECORD_MIME: {"what": what, **record}})
    return record


def check_tensor(got, expected, what, rtol=_RTOL, atol=_ATOL):
    """Fail unless ``got`` is a floating tensor with the shape and values of ``expected``.

    ``what`` names the call in the message, for example ``"corr2d_multi_in(X, K)"``.
    """
    record = _observed(got, what)
    expected = _plain(torch.as_tensor(expected)).to(torch.float64)
    if record["kind"] != "tensor":
        raise CheckFailed(
            f"{what} should return a torch.Tensor of shape {tuple(expected.shape)}, "
            f"but returned {record['description']}.")
    if tuple(record["shape"]) != tuple(expected.shape):
        raise CheckFailed(
            f"{what} has the wrong shape: expected {tuple(expected.shape)}, "
            f"got {tuple(record['shape'])}.")
    if not record["floating"]:
        raise CheckFailed(
            f"{what} should be a floating-point tensor, got {record['description']}.")
    got = _values(record)
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    try:
        torch.testing.assert_close(got, expected, rtol=rtol, atol=atol * scale)
    except AssertionError:
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
    record = _observed(got, what)
    expected = tuple(expected)
    if record["kind"] != "ints":
        raise CheckFailed(f"{what} should return a tuple of ints like {expected}, "
                          f"but returned {record['description']}.")
    if tuple(record["values"]) != expected:
        raise CheckFailed(f"{what}: expected {expected}, got {tuple(record['values'])}.")


class _Replay:
    def __init__(self, records):
        self.records = list(records)
        self.taken = 0
        self.checked = []  # what each check taken so far was about

    def take(self, what):
        self.checked.append(what)
        if self.taken == len(self.records):
            raise CheckFailed(f"{what}: no result of this check reached the grader (the cell "
                              "stopped before it, or the kernel died).")
        record = self.records[self.taken]
        self.taken += 1
        if record.get("what") != what:
            raise CheckFailed(f"{what}: the notebook recorded another check here "
                              f"({record.get('what')!r}); its test cell did not run as written.")
        return record


@contextlib.contextmanager
def replaying(records):
    """Within this block, checks judge the given records instead of their ``got`` argument."""
    global _replay
    previous, _replay = _replay, _Replay(records)
    try:
        yield _replay
    finally:
        _replay = previous


def random_tensor(generator, *shape):
    """A float32 tensor of small integers, drawn from ``generator`` (exact in float32)."""
    return torch.randint(-4, 5, shape, generator=generator).to(torch.float32)
