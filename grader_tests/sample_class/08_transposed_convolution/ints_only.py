"""Mistake: kernel_size, stride and padding taken as ints only; (h, w) pairs fail."""
# %% same trans_conv as notes_code
# %% trans_conv_output_shape
def trans_conv_output_shape(input_shape, kernel_size, stride=1, padding=0):
    n_h, n_w = (input_shape, input_shape) if isinstance(input_shape, int) else input_shape
    return ((n_h - 1) * stride - 2 * padding + kernel_size,
            (n_w - 1) * stride - 2 * padding + kernel_size)
# %% trans_conv_stride_pad
def trans_conv_stride_pad(X, K, stride=1, padding=0):
    s, p = stride, padding
    k_h, k_w = K.shape
    Y = torch.zeros(((X.shape[0] - 1) * s + k_h, (X.shape[1] - 1) * s + k_w))
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            Y[i * s: i * s + k_h, j * s: j * s + k_w] += X[i, j] * K
    return Y[p: Y.shape[0] - p, p: Y.shape[1] - p]
