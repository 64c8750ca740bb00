"""Mistake: the animations' view with its k - 1 - p border built by hand: wrong when p > k - 1."""
# %% same trans_conv as notes_code
# %% same trans_conv_output_shape as notes_code
# %% trans_conv_stride_pad
def trans_conv_stride_pad(X, K, stride=1, padding=0):
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding
    k_h, k_w = K.shape
    d_h, d_w = (X.shape[0] - 1) * s_h + 1, (X.shape[1] - 1) * s_w + 1
    b_h, b_w = k_h - 1 - p_h, k_w - 1 - p_w
    padded = torch.zeros((d_h + 2 * b_h, d_w + 2 * b_w))
    padded[b_h:b_h + d_h:s_h, b_w:b_w + d_w:s_w] = X
    return F.conv2d(padded[None, None], K.flip(0, 1)[None, None])[0, 0]
