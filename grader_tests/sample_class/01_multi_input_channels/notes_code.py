"""The notes' own code, exactly as d2l writes it."""
# %% corr2d_multi_in
def corr2d_multi_in(X, K):
    # Iterate through the 0th dimension (channel) of K first, then add them up
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))
