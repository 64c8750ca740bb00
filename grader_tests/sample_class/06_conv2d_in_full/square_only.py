"""Mistake: square kernels only: the count squares kernel_size, and corr2d_dilated uses K.shape[0] for both axes."""
# %% conv2d_param_count
def conv2d_param_count(in_channels, out_channels, kernel_size, groups=1, bias=True):
    weights = kernel_size * kernel_size * (in_channels // groups) * out_channels
    return weights + (out_channels if bias else 0)
# %% same conv_output_shape_dilated as notes_code
# %% corr2d_dilated
def corr2d_dilated(X, K, dilation):
    d_h, d_w = (dilation, dilation) if isinstance(dilation, int) else dilation
    k = K.shape[0]
    Y = torch.zeros(X.shape[0] - d_h * (k - 1), X.shape[1] - d_w * (k - 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            for a in range(k):
                for b in range(k):
                    Y[i, j] += X[i + a * d_h, j + b * d_w] * K[a, b]
    return Y
# %% same corr2d_grouped as notes_code
