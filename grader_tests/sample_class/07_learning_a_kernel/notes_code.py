"""The notes' way: the gradient as d2l's corr2d loops with dY as the kernel, d2l's loop by hand."""
# %% corr2d_kernel_grad
def corr2d_kernel_grad(X, dY):
    h, w = dY.shape
    dK = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for a in range(dK.shape[0]):
        for b in range(dK.shape[1]):
            dK[a, b] = (X[a:a + h, b:b + w] * dY).sum()
    return dK
# %% learn_kernel
def learn_kernel(X, Y, kernel_shape, lr, epochs):
    K = torch.zeros(kernel_shape)
    for i in range(epochs):
        Y_hat = d2l.corr2d(X, K)
        dY = 2 * (Y_hat - Y)
        K -= lr * corr2d_kernel_grad(X, dY)
    return K
