"""Mistake: s - 1 empty cells between neighbouring copies (copy i at i·(k + s - 1)), not between inputs."""
# %% same trans_conv as notes_code
# %% same trans_conv_output_shape as notes_code
# %% trans_conv_stride_pad
def trans_conv_stride_pad(X, K, stride=1, padding=0):
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding
    k_h, k_w = K.shape
    step_h, step_w = k_h + s_h - 1, k_w + s_w - 1
    Y = torch.zeros(((X.shape[0] - 1) * step_h + k_h, (X.shape[1] - 1) * step_w + k_w))
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            Y[i * step_h: i * step_h + k_h, j * step_w: j * step_w + k_w] += X[i, j] * K
    return Y[p_h: Y.shape[0] - p_h, p_w: Y.shape[1] - p_w]
