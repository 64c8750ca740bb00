"""Correct, built on PyTorch: counts a real nn.Conv2d's parameters, F.conv2d for the rest."""
# %% conv2d_param_count
def conv2d_param_count(in_channels, out_channels, kernel_size, groups=1, bias=True):
    layer = nn.Conv2d(in_channels, out_channels, kernel_size, groups=groups, bias=bias)
    return sum(p.numel() for p in layer.parameters())
# %% conv_output_shape_dilated
def conv_output_shape_dilated(input_shape, kernel_size, padding=0, stride=1, dilation=1):
    n_h, n_w = (input_shape, input_shape) if isinstance(input_shape, int) else input_shape
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    Y = F.conv2d(torch.zeros(1, 1, n_h, n_w), torch.zeros(1, 1, k_h, k_w), padding=padding,
                 stride=stride, dilation=dilation)
    return tuple(Y.shape[2:])
# %% corr2d_dilated
def corr2d_dilated(X, K, dilation):
    return F.conv2d(X[None, None], K[None, None], dilation=dilation)[0, 0]
# %% corr2d_grouped
def corr2d_grouped(X, K, groups):
    return F.conv2d(X.unsqueeze(0), K, groups=groups).squeeze(0)
