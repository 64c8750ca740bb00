"""Mistake: pool2d uses pool_size[0] for both axes (square windows only)."""
# %% pool2d
def pool2d(X, pool_size, mode='max'):
    p = pool_size[0]
    windows = X.unfold(0, p, 1).unfold(1, p, 1)
    return windows.amax(dim=(-2, -1)) if mode == 'max' else windows.mean(dim=(-2, -1))
# %% same max_pool2d as notes_code
