"""Correct, written another way: a zero canvas for padding, then strided unfold windows."""
# %% comp_conv2d
def comp_conv2d(conv2d, X):
    return conv2d(X.unsqueeze(0).unsqueeze(0)).squeeze(0).squeeze(0)
# %% conv_output_shape
def conv_output_shape(input_shape, kernel_size, padding=0, stride=1):
    as_pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    (n_h, n_w), (k_h, k_w) = as_pair(input_shape), as_pair(kernel_size)
    (p_h, p_w), (s_h, s_w) = as_pair(padding), as_pair(stride)
    return ((n_h - k_h + 2 * p_h + s_h) // s_h, (n_w - k_w + 2 * p_w + s_w) // s_w)
# %% corr2d_pad_stride
def corr2d_pad_stride(X, K, padding=0, stride=1):
    p_h, p_w = padding if isinstance(padding, tuple) else (padding, padding)
    s_h, s_w = stride if isinstance(stride, tuple) else (stride, stride)
    canvas = torch.zeros(X.shape[0] + 2 * p_h, X.shape[1] + 2 * p_w)
    canvas[p_h:p_h + X.shape[0], p_w:p_w + X.shape[1]] = X
    windows = canvas.unfold(0, K.shape[0], s_h).unfold(1, K.shape[1], s_w)
    return (windows * K).sum(dim=(-2, -1))
