"""Mistake: computes only the first output channel, keeping the output-channel axis."""
# %% corr2d_multi_in_out
def corr2d_multi_in_out(X, K):
    return corr2d_multi_in(X, K[0]).unsqueeze(0)
