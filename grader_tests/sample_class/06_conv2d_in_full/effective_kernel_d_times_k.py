"""Mistake: takes the effective kernel size to be d·k instead of d·(k − 1) + 1, in the output size and in corr2d_dilated."""
# %% same conv2d_param_count as notes_code
# %% conv_output_shape_dilated
def conv_output_shape_dilated(input_shape, kernel_size, padding=0, stride=1, dilation=1):
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)
    return tuple((n + 2 * p - d * k) // s + 1 for n, k, p, s, d in
                 zip(pair(input_shape), pair(kernel_size), pair(padding), pair(stride),
                     pair(dilation)))
# %% corr2d_dilated
def corr2d_dilated(X, K, dilation):
    d_h, d_w = (dilation, dilation) if isinstance(dilation, int) else dilation
    k_h, k_w = K.shape
    Y = torch.zeros(X.shape[0] - d_h * k_h + 1, X.shape[1] - d_w * k_w + 1)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + d_h * k_h:d_h, j:j + d_w * k_w:d_w] * K).sum()
    return Y
# %% same corr2d_grouped as notes_code
