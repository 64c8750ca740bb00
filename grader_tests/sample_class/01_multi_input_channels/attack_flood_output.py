"""Attack (or slip): a correct answer that prints 50 MB; its output is capped."""
# %% corr2d_multi_in
print("x" * 50_000_000)

def corr2d_multi_in(X, K):
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))
