"""Checks for the notebooks' test cells, with messages a student can act on.

Every check looks at the type first, then the shape, then the values, and says what was
expected and what came back. Values are compared as float64 with a tolerance, so any
floating dtype and any correct way of computing passes.
"""
import numbers

import torch

_RTOL = 1e-4
_ATOL = 1e-4


class CheckFailed(AssertionError):
    """A student's result is wrong; the message says how."""


def _plain(tensor):
    """A plain ``torch.Tensor`` view of ``tensor``, so a subclass cannot answer for itself."""
    with torch._C.DisableTorchFunction():
        return torch.Tensor.as_subclass(tensor, torch.Tensor).detach().cpu()


def _describe(value):
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"a {type(value).__module__}.{type(value).__qualname__}: {value!r:.200}"


def check_tensor(got, expected, what, rtol=_RTOL, atol=_ATOL):
    """Fail unless ``got`` is a floating tensor with the shape and values of ``expected``.

    ``what`` names the call in the message, for example ``"corr2d_multi_in(X, K)"``.
    """
    expected = _plain(torch.as_tensor(expected)).to(torch.float64)
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(
            f"{what} should return a torch.Tensor of shape {tuple(expected.shape)}, "
            f"but returned {_describe(got)}.")
    got = _plain(got)
    if tuple(got.shape) != tuple(expected.shape):
        raise CheckFailed(
            f"{what} has the wrong shape: expected {tuple(expected.shape)}, "
            f"got {tuple(got.shape)}.")
    if not got.is_floating_point():
        raise CheckFailed(
            f"{what} should be a floating-point tensor, got dtype {got.dtype}.")
    got = got.to(torch.float64)
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    try:
        torch.testing.assert_close(got, expected, rtol=rtol, atol=atol * scale)
    except AssertionError:
        wrong = ~torch.isclose(got, expected, rtol=rtol, atol=atol * scale)
        first = tuple(int(i) for i in wrong.nonzero()[0])
        with _print_options(precision=4, sci_mode=False):
            detail = f"expected\n{expected.float()}\ngot\n{got.float()}"
        raise CheckFailed(
            f"{what} has the wrong values: {int(wrong.sum())} of {wrong.numel()} elements "
            f"differ; at index {first} expected {expected[first].item():g}, "
            f"got {got[first].item():g}.\n{detail}") from None


class _print_options:
    """Temporarily set torch's print options (torch has no context manager for this)."""

    def __init__(self, **options):
        self.options = options

    def __enter__(self):
        torch.set_printoptions(**self.options)

    def __exit__(self, *exc):
        torch.set_printoptions(profile="default")


def check_shape_tuple(got, expected, what):
    """Fail unless ``got`` is a tuple (or list) of Python ints equal to ``expected``."""
    expected = tuple(expected)
    if not isinstance(got, (tuple, list)) or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in got):
        raise CheckFailed(f"{what} should return a tuple of ints like {expected}, "
                          f"but returned {_describe(got)}.")
    if tuple(int(n) for n in got) != expected:
        raise CheckFailed(f"{what}: expected {expected}, got {tuple(got)}.")


def random_tensor(generator, *shape):
    """A float32 tensor of small integers, drawn from ``generator`` (exact in float32)."""
    return torch.randint(-4, 5, shape, generator=generator).to(torch.float32)
