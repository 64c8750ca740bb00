"""Mistake: comp_conv2d returns the layer's 4-D output; the two others are right."""
# %% comp_conv2d
def comp_conv2d(conv2d, X):
    return conv2d(X.reshape((1, 1) + X.shape))
# %% conv_output_shape
def conv_output_shape(input_shape, kernel_size, padding=0, stride=1):
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)
    return tuple((n + 2 * p - k) // s + 1 for n, k, p, s in
                 zip(pair(input_shape), pair(kernel_size), pair(padding), pair(stride)))
# %% corr2d_pad_stride
def corr2d_pad_stride(X, K, padding=0, stride=1):
    return F.conv2d(X[None, None], K[None, None], padding=padding, stride=stride)[0, 0]
