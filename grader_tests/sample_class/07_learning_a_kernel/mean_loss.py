"""Mistake: the gradient of the mean squared error (divided by Y.numel()), not of the sum."""
# %% same corr2d_kernel_grad as notes_code
# %% learn_kernel
def learn_kernel(X, Y, kernel_shape, lr, epochs):
    K = torch.zeros(kernel_shape)
    for i in range(epochs):
        dY = 2 * (d2l.corr2d(X, K) - Y) / Y.numel()
        K -= lr * corr2d_kernel_grad(X, dY)
    return K
