"""Correct, written another way: unfold X into windows, einsum with dY and with K."""
# %% corr2d_kernel_grad
def corr2d_kernel_grad(X, dY):
    windows = X.unfold(0, dY.shape[0], 1).unfold(1, dY.shape[1], 1)  # (k_h, k_w, y_h, y_w)
    return torch.einsum('abij,ij->ab', windows, dY)
# %% learn_kernel
def learn_kernel(X, Y, kernel_shape, lr, epochs):
    k_h, k_w = kernel_shape
    windows = X.unfold(0, k_h, 1).unfold(1, k_w, 1)  # (y_h, y_w, k_h, k_w)
    K = torch.zeros(kernel_shape)
    for _ in range(epochs):
        dY = 2 * (torch.einsum('ijab,ab->ij', windows, K) - Y)
        K = K - lr * corr2d_kernel_grad(X, dY)
    return K
