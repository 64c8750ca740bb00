"""Mistake: a convolution of the zero-padded (and zero-inserted) input with K itself, not flipped."""
# %% trans_conv
def trans_conv(X, K):
    k_h, k_w = K.shape
    padded = F.pad(X, (k_w - 1, k_w - 1, k_h - 1, k_h - 1))
    return F.conv2d(padded[None, None], K[None, None])[0, 0]
# %% same trans_conv_output_shape as notes_code
# %% trans_conv_stride_pad
def trans_conv_stride_pad(X, K, stride=1, padding=0):
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding
    k_h, k_w = K.shape
    dilated = X.new_zeros(((X.shape[0] - 1) * s_h + 1, (X.shape[1] - 1) * s_w + 1))
    dilated[::s_h, ::s_w] = X
    padded = F.pad(dilated, (k_w - 1 - p_w, k_w - 1 - p_w, k_h - 1 - p_h, k_h - 1 - p_h))
    return F.conv2d(padded[None, None], K[None, None])[0, 0]
