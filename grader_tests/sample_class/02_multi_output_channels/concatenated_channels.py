"""Mistake: concatenates the output channels (torch.cat) instead of stacking them."""
# %% corr2d_multi_in_out
def corr2d_multi_in_out(X, K):
    return torch.cat([corr2d_multi_in(X, k) for k in K], 0)
