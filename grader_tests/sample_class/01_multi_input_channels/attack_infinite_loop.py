"""Attack: loops forever on non-square inputs; the per-cell timeout stops it, later cells run."""
# %% corr2d_multi_in
def corr2d_multi_in(X, K):
    while X.shape[1] != X.shape[2]:
        pass
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))
