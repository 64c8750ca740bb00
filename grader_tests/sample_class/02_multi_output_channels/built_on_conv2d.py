"""Correct, built on torch.nn.functional: add a batch axis, convolve, drop it."""
# %% corr2d_multi_in_out
def corr2d_multi_in_out(X, K):
    return F.conv2d(X.unsqueeze(0), K).squeeze(0)
