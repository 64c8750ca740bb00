"""Attack (or slip): the answer cell does not parse."""
# %% corr2d_multi_in
def corr2d_multi_in(X, K)
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))
