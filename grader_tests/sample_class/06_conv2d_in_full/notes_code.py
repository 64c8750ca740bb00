"""The notes' parameter count and output size, and d2l-style loops for the two cross-correlations."""
# %% conv2d_param_count
def conv2d_param_count(in_channels, out_channels, kernel_size, groups=1, bias=True):
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    weights = k_h * k_w * (in_channels // groups) * out_channels
    return weights + (out_channels if bias else 0)
# %% conv_output_shape_dilated
def conv_output_shape_dilated(input_shape, kernel_size, padding=0, stride=1, dilation=1):
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, p, s, d in
                 zip(pair(input_shape), pair(kernel_size), pair(padding), pair(stride),
                     pair(dilation)))
# %% corr2d_dilated
def corr2d_dilated(X, K, dilation):
    d_h, d_w = (dilation, dilation) if isinstance(dilation, int) else dilation
    k_h, k_w = K.shape
    span_h, span_w = d_h * (k_h - 1) + 1, d_w * (k_w - 1) + 1
    Y = torch.zeros(X.shape[0] - span_h + 1, X.shape[1] - span_w + 1)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + span_h:d_h, j:j + span_w:d_w] * K).sum()
    return Y
# %% corr2d_grouped
def corr2d_grouped(X, K, groups):
    c_o, per_group = K.shape[0], K.shape[1]
    outputs_per_group = c_o // groups
    Y = []
    for o in range(c_o):
        g = o // outputs_per_group
        X_g = X[g * per_group:(g + 1) * per_group]
        Y.append(sum(d2l.corr2d(x, k) for x, k in zip(X_g, K[o])))
    return torch.stack(Y)
