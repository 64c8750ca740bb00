"""Mistake: iterates over the input-channel axis of K instead of the output-channel axis."""
# %% corr2d_multi_in_out
def corr2d_multi_in_out(X, K):
    return torch.stack([corr2d_multi_in(X, k) for k in K.transpose(0, 1)], 0)
