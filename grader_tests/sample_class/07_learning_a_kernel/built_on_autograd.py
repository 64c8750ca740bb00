"""Correct, with autograd: K.grad after Y.backward(dY); the loop steps K by hand."""
# %% corr2d_kernel_grad
def corr2d_kernel_grad(X, dY):
    k_h, k_w = X.shape[0] - dY.shape[0] + 1, X.shape[1] - dY.shape[1] + 1
    K = torch.zeros((k_h, k_w), requires_grad=True)
    Y = F.conv2d(X[None, None].float(), K[None, None])[0, 0]
    Y.backward(dY.float())
    return K.grad
# %% learn_kernel
def learn_kernel(X, Y, kernel_shape, lr, epochs):
    K = torch.zeros(kernel_shape, requires_grad=True)
    for _ in range(epochs):
        loss = ((F.conv2d(X[None, None], K[None, None])[0, 0] - Y) ** 2).sum()
        K.grad = None
        loss.backward()
        with torch.no_grad():
            K -= lr * K.grad
    return K.detach()
