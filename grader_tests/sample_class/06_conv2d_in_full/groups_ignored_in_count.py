"""Mistake: conv2d_param_count counts every output channel as seeing all input channels, whatever groups is."""
# %% conv2d_param_count
def conv2d_param_count(in_channels, out_channels, kernel_size, groups=1, bias=True):
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    weights = k_h * k_w * in_channels * out_channels
    return weights + (out_channels if bias else 0)
# %% same conv_output_shape_dilated as notes_code
# %% same corr2d_dilated as notes_code
# %% same corr2d_grouped as notes_code
