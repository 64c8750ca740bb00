"""Attack: a wrong answer, and both test cells edited to pass; nbgrader restores them."""
# %% corr2d_multi_in
def corr2d_multi_in(X, K):
    return torch.zeros(X.shape[1] - K.shape[1] + 1, X.shape[2] - K.shape[2] + 1)
# %% edit test_corr2d_multi_in_worked_example
print("The worked example is right.")
# %% edit test_corr2d_multi_in_against_pytorch
print("Matches F.conv2d on a (3, 5, 4) input with a (3, 2, 3) kernel.")
