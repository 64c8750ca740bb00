"""Mistake: the gradient convolves (dY flipped) instead of cross-correlating; learn_kernel uses it."""
# %% corr2d_kernel_grad
def corr2d_kernel_grad(X, dY):
    return d2l.corr2d(X, torch.flip(dY, (0, 1)))
# %% same learn_kernel as notes_code
