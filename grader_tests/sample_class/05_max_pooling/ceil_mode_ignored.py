"""Mistake: max_pool2d always rounds down, ignoring ceil_mode."""
# %% same pool2d as notes_code
# %% max_pool2d
def max_pool2d(X, kernel_size, stride=None, padding=0, ceil_mode=False):
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)

    def out_size(n, k, p, s):
        span = n + 2 * p - k
        size = span // s + 1
        return size

    (k_h, k_w), (p_h, p_w) = pair(kernel_size), pair(padding)
    s_h, s_w = pair(kernel_size if stride is None else stride)
    c, n_h, n_w = X.shape
    o_h, o_w = out_size(n_h, k_h, p_h, s_h), out_size(n_w, k_w, p_w, s_w)
    padded = torch.full((c, n_h + 2 * p_h + k_h + s_h, n_w + 2 * p_w + k_w + s_w), -float("inf"))
    padded[:, p_h:p_h + n_h, p_w:p_w + n_w] = X
    Y = torch.zeros((c, o_h, o_w))
    for i in range(o_h):
        for j in range(o_w):
            Y[:, i, j] = padded[:, i * s_h:i * s_h + k_h, j * s_w:j * s_w + k_w].amax(dim=(1, 2))
    return Y
