"""Mistake: padding removes p rows at the top and p columns on the left only, not on both sides."""
# %% same trans_conv as notes_code
# %% trans_conv_output_shape
def trans_conv_output_shape(input_shape, kernel_size, stride=1, padding=0):
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)
    return tuple((n - 1) * s - p + k for n, k, s, p in
                 zip(pair(input_shape), pair(kernel_size), pair(stride), pair(padding)))
# %% trans_conv_stride_pad
def trans_conv_stride_pad(X, K, stride=1, padding=0):
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding
    k_h, k_w = K.shape
    Y = torch.zeros(((X.shape[0] - 1) * s_h + k_h, (X.shape[1] - 1) * s_w + k_w))
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            Y[i * s_h: i * s_h + k_h, j * s_w: j * s_w + k_w] += X[i, j] * K
    return Y[p_h:, p_w:]
