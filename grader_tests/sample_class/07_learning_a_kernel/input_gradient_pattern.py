"""Mistake: adds each dY[i, j] * window at the window's place in X (the input gradient's pattern): X's shape."""
# %% corr2d_kernel_grad
def corr2d_kernel_grad(X, dY):
    k_h, k_w = X.shape[0] - dY.shape[0] + 1, X.shape[1] - dY.shape[1] + 1
    dK = torch.zeros(X.shape)
    for i in range(dY.shape[0]):
        for j in range(dY.shape[1]):
            dK[i:i + k_h, j:j + k_w] += dY[i, j] * X[i:i + k_h, j:j + k_w]
    return dK
# %% same learn_kernel as built_on_conv2d
