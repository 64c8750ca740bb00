"""Mistake: in corr2d_grouped every output channel sees the first c_i / groups input channels, whatever its group."""
# %% same conv2d_param_count as notes_code
# %% same conv_output_shape_dilated as notes_code
# %% same corr2d_dilated as notes_code
# %% corr2d_grouped
def corr2d_grouped(X, K, groups):
    per_group = K.shape[1]
    return torch.stack([sum(d2l.corr2d(x, k) for x, k in zip(X[:per_group], K_o)) for K_o in K])
