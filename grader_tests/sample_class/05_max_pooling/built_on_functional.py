"""Correct, built on torch.nn.functional's pooling."""
# %% pool2d
def pool2d(X, pool_size, mode='max'):
    pool = F.max_pool2d if mode == 'max' else F.avg_pool2d
    return pool(X.unsqueeze(0), pool_size, stride=1).squeeze(0)
# %% max_pool2d
def max_pool2d(X, kernel_size, stride=None, padding=0, ceil_mode=False):
    return F.max_pool2d(X, kernel_size, stride, padding, ceil_mode=ceil_mode)
