"""Attack: loops on non-square inputs and swallows the timeout's interrupt."""
# %% corr2d_multi_in
import time

def corr2d_multi_in(X, K):
    while X.shape[1] != X.shape[2]:
        try:
            time.sleep(0.05)
        except BaseException:
            pass
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))
