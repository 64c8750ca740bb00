"""Mistake: the output-size formula forgets the + 1; the two others are right."""
# %% same comp_conv2d as notes_code
# %% conv_output_shape
def conv_output_shape(input_shape, kernel_size, padding=0, stride=1):
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)
    return tuple((n + 2 * p - k) // s for n, k, p, s in
                 zip(pair(input_shape), pair(kernel_size), pair(padding), pair(stride)))
# %% same corr2d_pad_stride as built_on_functional
