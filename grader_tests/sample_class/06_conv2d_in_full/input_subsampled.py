"""Mistake: corr2d_dilated applies the dilation to the input (keeps every d-th row and column) instead of to the kernel."""
# %% same conv2d_param_count as notes_code
# %% same conv_output_shape_dilated as notes_code
# %% corr2d_dilated
def corr2d_dilated(X, K, dilation):
    d_h, d_w = (dilation, dilation) if isinstance(dilation, int) else dilation
    return d2l.corr2d(X[::d_h, ::d_w], K)
# %% same corr2d_grouped as notes_code
