"""Mistake: for (h, w) pairs, uses the first value on both axes; right for ints."""
# %% same comp_conv2d as notes_code
# %% conv_output_shape
def conv_output_shape(input_shape, kernel_size, padding=0, stride=1):
    first = lambda v: v if isinstance(v, int) else v[0]
    n, k, p, s = first(input_shape), first(kernel_size), first(padding), first(stride)
    size = (n + 2 * p - k) // s + 1
    return (size, size)
# %% corr2d_pad_stride
def corr2d_pad_stride(X, K, padding=0, stride=1):
    p = padding if isinstance(padding, int) else padding[0]
    s = stride if isinstance(stride, int) else stride[0]
    return F.conv2d(X[None, None], K[None, None], padding=p, stride=s)[0, 0]
