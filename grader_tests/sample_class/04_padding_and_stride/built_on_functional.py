"""Correct, written another way: indexing, math.floor, and F.conv2d."""
# %% comp_conv2d
def comp_conv2d(conv2d, X):
    return conv2d(X[None, None])[0, 0]
# %% conv_output_shape
import math

def conv_output_shape(input_shape, kernel_size, padding=0, stride=1):
    args = [a if isinstance(a, (tuple, list)) else (a, a)
            for a in (input_shape, kernel_size, padding, stride)]
    return tuple(math.floor((n + 2 * p - k) / s) + 1 for n, k, p, s in zip(*args))
# %% corr2d_pad_stride
def corr2d_pad_stride(X, K, padding=0, stride=1):
    return F.conv2d(X[None, None], K[None, None], padding=padding, stride=stride)[0, 0]
