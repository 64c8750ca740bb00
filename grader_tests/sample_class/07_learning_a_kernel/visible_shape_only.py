"""Mistake: learn_kernel written for d2l's 1×2 kernel only (two weights, two shifted images)."""
# %% same corr2d_kernel_grad as notes_code
# %% learn_kernel
def learn_kernel(X, Y, kernel_shape, lr, epochs):
    k0, k1 = 0.0, 0.0
    left, right = X[:, :-1], X[:, 1:]
    for i in range(epochs):
        dY = 2 * (k0 * left + k1 * right - Y)
        k0, k1 = k0 - lr * (dY * left).sum(), k1 - lr * (dY * right).sum()
    return torch.stack([k0, k1]).reshape(1, 2)
