"""Mistake: the stride is ignored (always 1) in the shape formula and in the loop."""
# %% same comp_conv2d as notes_code
# %% conv_output_shape
def conv_output_shape(input_shape, kernel_size, padding=0, stride=1):
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)
    return tuple(n + 2 * p - k + 1 for n, k, p in
                 zip(pair(input_shape), pair(kernel_size), pair(padding)))
# %% corr2d_pad_stride
def corr2d_pad_stride(X, K, padding=0, stride=1):
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding
    return d2l.corr2d(F.pad(X, (p_w, p_w, p_h, p_h)), K)
