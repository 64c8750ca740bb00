"""Mistake: multiplies pixel by pixel, then reshapes (h*w, c_o) straight to (c_o, h, w)."""
# %% corr2d_multi_in_out_1x1
def corr2d_multi_in_out_1x1(X, K):
    c_i, h, w = X.shape
    c_o = K.shape[0]
    Y = X.permute(1, 2, 0).reshape((h * w, c_i)) @ K.reshape((c_o, c_i)).T
    return Y.reshape((c_o, h, w))
