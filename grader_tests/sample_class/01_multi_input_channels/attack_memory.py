"""Attack (sandbox): a correct answer that first fills 8 GiB of memory. The sandbox's memory
limit stops the kernel there: no test can pass, and the machine is untouched."""
# %% corr2d_multi_in
hog = torch.ones(2 ** 31)  # 8 GiB of float32, every page written

def corr2d_multi_in(X, K):
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))
