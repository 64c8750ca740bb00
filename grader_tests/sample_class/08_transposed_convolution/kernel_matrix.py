"""Correct, through d2l's matrix view: the convolution's matrix W, then Wᵀ times the input."""
# %% trans_conv
def trans_conv(X, K):
    (n_h, n_w), (k_h, k_w) = X.shape, K.shape
    o_h, o_w = n_h + k_h - 1, n_w + k_w - 1
    # Row (i, j) of W: the kernel at the cells that output (i, j) of the convolution sees.
    W = torch.zeros(n_h * n_w, o_h * o_w)
    for i in range(n_h):
        for j in range(n_w):
            seen = torch.zeros(o_h, o_w)
            seen[i:i + k_h, j:j + k_w] = K
            W[i * n_w + j] = seen.reshape(-1)
    return (W.T @ X.reshape(-1)).reshape(o_h, o_w)
# %% trans_conv_output_shape
def trans_conv_output_shape(input_shape, kernel_size, stride=1, padding=0):
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)
    sizes = []
    # The smallest input that a convolution with the same settings maps to n.
    for n, k, s, p in zip(pair(input_shape), pair(kernel_size), pair(stride), pair(padding)):
        o = 1
        while (o + 2 * p - k) // s + 1 < n:
            o += 1
        sizes.append(o)
    return tuple(sizes)
# %% trans_conv_stride_pad
def trans_conv_stride_pad(X, K, stride=1, padding=0):
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding
    (n_h, n_w), (k_h, k_w) = X.shape, K.shape
    full_h, full_w = (n_h - 1) * s_h + k_h, (n_w - 1) * s_w + k_w
    o_h, o_w = full_h - 2 * p_h, full_w - 2 * p_w
    # The convolution with padding p: its padded cells have no column in W.
    W = torch.zeros(n_h * n_w, o_h * o_w)
    for i in range(n_h):
        for j in range(n_w):
            seen = torch.zeros(full_h, full_w)
            seen[i * s_h:i * s_h + k_h, j * s_w:j * s_w + k_w] = K
            W[i * n_w + j] = seen[p_h:p_h + o_h, p_w:p_w + o_w].reshape(-1)
    return (W.T @ X.reshape(-1)).reshape(o_h, o_w)
