"""Attack (red team): a correct answer whose cell sends one 100 MB output, over what the
grader's kernel client accepts (64 MiB). That cell fails (its output never arrives whole);
the notebook goes on, and the checks earn their points."""
# %% corr2d_multi_in
from IPython.display import publish_display_data
publish_display_data({"text/plain": "z" * 100_000_000})

def corr2d_multi_in(X, K):
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))
