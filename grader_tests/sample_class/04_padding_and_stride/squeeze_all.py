"""Mistake: comp_conv2d drops every axis of size 1 (squeeze), so a 1-row output loses its axis."""
# %% comp_conv2d
def comp_conv2d(conv2d, X):
    return conv2d(X.reshape((1, 1) + X.shape)).squeeze()
# %% same conv_output_shape as notes_code
# %% same corr2d_pad_stride as built_on_functional
