"""Mistake: dY = Y_hat - Y, the factor 2 of the squared error's derivative forgotten."""
# %% same corr2d_kernel_grad as notes_code
# %% learn_kernel
def learn_kernel(X, Y, kernel_shape, lr, epochs):
    K = torch.zeros(kernel_shape)
    for i in range(epochs):
        dY = d2l.corr2d(X, K) - Y
        K -= lr * corr2d_kernel_grad(X, dY)
    return K
