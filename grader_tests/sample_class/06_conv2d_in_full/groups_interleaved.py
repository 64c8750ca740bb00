"""Mistake: corr2d_grouped puts output channel o in group o % groups instead of o // (c_o / groups)."""
# %% same conv2d_param_count as notes_code
# %% same conv_output_shape_dilated as notes_code
# %% same corr2d_dilated as notes_code
# %% corr2d_grouped
def corr2d_grouped(X, K, groups):
    per_group = K.shape[1]
    Y = []
    for o in range(K.shape[0]):
        g = o % groups
        X_g = X[g * per_group:(g + 1) * per_group]
        Y.append(sum(d2l.corr2d(x, k) for x, k in zip(X_g, K[o])))
    return torch.stack(Y)
