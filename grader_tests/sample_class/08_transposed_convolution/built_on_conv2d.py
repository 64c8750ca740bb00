"""Correct, the animations' way: F.conv2d on the zero-inserted, padded input with K flipped."""
# %% trans_conv
def trans_conv(X, K):
    k_h, k_w = K.shape
    padded = F.pad(X, (k_w - 1, k_w - 1, k_h - 1, k_h - 1))
    return F.conv2d(padded[None, None], K.flip(0, 1)[None, None])[0, 0]
# %% trans_conv_output_shape
def trans_conv_output_shape(input_shape, kernel_size, stride=1, padding=0):
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)
    sizes = []
    for n, k, s, p in zip(pair(input_shape), pair(kernel_size), pair(stride), pair(padding)):
        dilated = n + (n - 1) * (s - 1)          # s - 1 zeros between neighbours
        padded = dilated + 2 * (k - 1 - p)       # k - 1 - p zeros on each side
        sizes.append(padded - k + 1)             # a stride-1 convolution
    return tuple(sizes)
# %% trans_conv_stride_pad
def trans_conv_stride_pad(X, K, stride=1, padding=0):
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding
    k_h, k_w = K.shape
    dilated = X.new_zeros(((X.shape[0] - 1) * s_h + 1, (X.shape[1] - 1) * s_w + 1))
    dilated[::s_h, ::s_w] = X
    # A negative pad crops: right when p > k - 1.
    padded = F.pad(dilated, (k_w - 1 - p_w, k_w - 1 - p_w, k_h - 1 - p_h, k_h - 1 - p_h))
    return F.conv2d(padded[None, None], K.flip(0, 1)[None, None])[0, 0]
