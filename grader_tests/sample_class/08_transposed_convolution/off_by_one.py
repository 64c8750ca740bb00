"""Mistake: the "- 1" forgotten: n + k cells in trans_conv, n·s - 2p + k in the formula."""
# %% trans_conv
def trans_conv(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] + h, X.shape[1] + w))
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            Y[i: i + h, j: j + w] += X[i, j] * K
    return Y
# %% trans_conv_output_shape
def trans_conv_output_shape(input_shape, kernel_size, stride=1, padding=0):
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)
    return tuple(n * s - 2 * p + k for n, k, s, p in
                 zip(pair(input_shape), pair(kernel_size), pair(stride), pair(padding)))
# %% same trans_conv_stride_pad as notes_code
