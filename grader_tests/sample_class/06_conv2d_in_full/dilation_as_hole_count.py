"""Mistake: reads dilation as the number of holes between the kernel's cells (cells d + 1 apart), so dilation 1 already spreads them."""
# %% same conv2d_param_count as notes_code
# %% conv_output_shape_dilated
def conv_output_shape_dilated(input_shape, kernel_size, padding=0, stride=1, dilation=1):
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)
    return tuple((n + 2 * p - (d + 1) * (k - 1) - 1) // s + 1 for n, k, p, s, d in
                 zip(pair(input_shape), pair(kernel_size), pair(padding), pair(stride),
                     pair(dilation)))
# %% corr2d_dilated
def corr2d_dilated(X, K, dilation):
    d_h, d_w = (dilation, dilation) if isinstance(dilation, int) else dilation
    step_h, step_w = d_h + 1, d_w + 1
    k_h, k_w = K.shape
    span_h, span_w = step_h * (k_h - 1) + 1, step_w * (k_w - 1) + 1
    Y = torch.zeros(X.shape[0] - span_h + 1, X.shape[1] - span_w + 1)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + span_h:step_h, j:j + span_w:step_w] * K).sum()
    return Y
# %% same corr2d_grouped as notes_code
