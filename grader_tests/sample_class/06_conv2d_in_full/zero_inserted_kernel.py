"""Correct, written another way: the dilated kernel as a bigger kernel with zeros; groups as separate convolutions, concatenated."""
# %% conv2d_param_count
def conv2d_param_count(in_channels, out_channels, kernel_size, groups=1, bias=True):
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    # g small layers, each from c_i / g to c_o / g channels
    per_group = k_h * k_w * (in_channels // groups) * (out_channels // groups)
    return groups * per_group + out_channels * int(bias)
# %% conv_output_shape_dilated
def conv_output_shape_dilated(input_shape, kernel_size, padding=0, stride=1, dilation=1):
    shape = []
    for axis in range(2):
        n, k, p, s, d = [v if isinstance(v, int) else v[axis]
                         for v in (input_shape, kernel_size, padding, stride, dilation)]
        effective = d * (k - 1) + 1
        shape.append(len(range(0, n + 2 * p - effective + 1, s)))
    return tuple(shape)
# %% corr2d_dilated
def corr2d_dilated(X, K, dilation):
    d_h, d_w = (dilation, dilation) if isinstance(dilation, int) else dilation
    k_h, k_w = K.shape
    K_big = torch.zeros(d_h * (k_h - 1) + 1, d_w * (k_w - 1) + 1)
    K_big[::d_h, ::d_w] = K
    return d2l.corr2d(X, K_big)
# %% corr2d_grouped
def corr2d_grouped(X, K, groups):
    def corr2d_multi_in_out(X, K):
        return torch.stack([sum(d2l.corr2d(x, k) for x, k in zip(X, k_o)) for k_o in K])
    X_groups = X.chunk(groups, dim=0)
    K_groups = K.chunk(groups, dim=0)
    return torch.cat([corr2d_multi_in_out(x, k) for x, k in zip(X_groups, K_groups)])
