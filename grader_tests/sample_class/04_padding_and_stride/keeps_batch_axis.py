"""Mistake: comp_conv2d returns the layer's 4-D output; the two others are right."""
# %% comp_conv2d
def comp_conv2d(conv2d, X):
    return conv2d(X.reshape((1, 1) + X.shape))
# %% same conv_output_shape as notes_code
# %% same corr2d_pad_stride as built_on_functional
