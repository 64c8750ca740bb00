"""Attack (red team): a function that returns nothing useful, and the course's check replaced
by one that checks the test's own expected value instead of the result. Test cells do not
run in the kernel while grading, so the patch is never called."""
# %% corr2d_multi_in
import convcourse.checks as _c

_orig = _c.check_tensor
_c.check_tensor = lambda got, expected, what, *a, **k: _orig(
    torch.as_tensor(expected, dtype=torch.float64), expected, what, *a, **k)

def corr2d_multi_in(X, K):
    return torch.zeros(1)
