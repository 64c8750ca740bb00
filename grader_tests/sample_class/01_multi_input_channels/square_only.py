"""Mistake: loops with the output height used for both axes, right only for square outputs."""
# %% corr2d_multi_in
def corr2d_multi_in(X, K):
    c_i, k_h, k_w = K.shape
    n = X.shape[1] - k_h + 1
    Y = torch.zeros(n, n)
    for i in range(n):
        for j in range(n):
            Y[i, j] = (X[:, i:i + k_h, j:j + k_w] * K).sum()
    return Y
