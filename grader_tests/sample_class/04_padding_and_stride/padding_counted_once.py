"""Mistake: padding counted once, not per side (n + p - k; zeros only at the bottom and right)."""
# %% same comp_conv2d as notes_code
# %% conv_output_shape
def conv_output_shape(input_shape, kernel_size, padding=0, stride=1):
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)
    return tuple((n + p - k) // s + 1 for n, k, p, s in
                 zip(pair(input_shape), pair(kernel_size), pair(padding), pair(stride)))
# %% corr2d_pad_stride
def corr2d_pad_stride(X, K, padding=0, stride=1):
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    X = F.pad(X, (0, p_w, 0, p_h))
    k_h, k_w = K.shape
    Y = torch.zeros((X.shape[0] - k_h) // s_h + 1, (X.shape[1] - k_w) // s_w + 1)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i * s_h:i * s_h + k_h, j * s_w:j * s_w + k_w] * K).sum()
    return Y
