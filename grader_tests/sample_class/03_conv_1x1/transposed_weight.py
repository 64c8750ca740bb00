"""Mistake: reshapes the kernel as (c_i, c_o) and transposes, mixing up the weights."""
# %% corr2d_multi_in_out_1x1
def corr2d_multi_in_out_1x1(X, K):
    c_i, h, w = X.shape
    c_o = K.shape[0]
    W = K.reshape((c_i, c_o)).T
    return torch.matmul(W, X.reshape((c_i, h * w))).reshape((c_o, h, w))
