"""Correct, written another way: windows with F.unfold (which takes a dilation), weights applied with einsum."""
# %% conv2d_param_count
def conv2d_param_count(in_channels, out_channels, kernel_size, groups=1, bias=True):
    size = torch.Size((out_channels, in_channels // groups)
                      + ((kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)))
    return size.numel() + (out_channels if bias else 0)
# %% conv_output_shape_dilated
def conv_output_shape_dilated(input_shape, kernel_size, padding=0, stride=1, dilation=1):
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)
    n, k, p, s, d = map(pair, (input_shape, kernel_size, padding, stride, dilation))
    return tuple((n[a] + 2 * p[a] - (d[a] * (k[a] - 1) + 1)) // s[a] + 1 for a in range(2))
# %% corr2d_dilated
def corr2d_dilated(X, K, dilation):
    d_h, d_w = (dilation, dilation) if isinstance(dilation, int) else dilation
    k_h, k_w = K.shape
    columns = F.unfold(X[None, None], (k_h, k_w), dilation=(d_h, d_w))[0]
    out_h, out_w = X.shape[0] - d_h * (k_h - 1), X.shape[1] - d_w * (k_w - 1)
    return torch.einsum("k,kl->l", K.reshape(-1), columns).reshape(out_h, out_w)
# %% corr2d_grouped
def corr2d_grouped(X, K, groups):
    c_i, n_h, n_w = X.shape
    c_o, per_group, k_h, k_w = K.shape
    columns = F.unfold(X[None], (k_h, k_w))[0]  # (c_i * k_h * k_w, windows)
    columns = columns.reshape(groups, per_group * k_h * k_w, -1)
    weights = K.reshape(groups, c_o // groups, per_group * k_h * k_w)
    Y = torch.einsum("gok,gkl->gol", weights, columns)
    return Y.reshape(c_o, n_h - k_h + 1, n_w - k_w + 1)
