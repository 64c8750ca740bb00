"""Mistake: a true convolution, flipping each kernel channel, as in signal processing."""
# %% corr2d_multi_in
def corr2d_multi_in(X, K):
    return sum(d2l.corr2d(x, torch.flip(k, (0, 1))) for x, k in zip(X, K))
