"""Correct, built on F.conv2d: dY as the kernel of a convolution over X."""
# %% corr2d_kernel_grad
def corr2d_kernel_grad(X, dY):
    return F.conv2d(X[None, None], dY[None, None])[0, 0]
# %% learn_kernel
def learn_kernel(X, Y, kernel_shape, lr, epochs):
    K = torch.zeros(kernel_shape)
    for _ in range(epochs):
        dY = 2 * (F.conv2d(X[None, None], K[None, None])[0, 0] - Y)
        K = K - lr * F.conv2d(X[None, None], dY[None, None])[0, 0]
    return K
