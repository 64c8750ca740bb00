"""Attack: kills the kernel (os._exit) on float64 input; no later test may count as passed."""
# %% corr2d_multi_in
import os

def corr2d_multi_in(X, K):
    if X.dtype == torch.float64:
        os._exit(0)
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))
