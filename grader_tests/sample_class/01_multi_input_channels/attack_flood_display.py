"""Attack (red team): a correct answer that floods the grader through the output paths a
plain cap misses: display updates (100 MB), outputs in the course's own result format,
and widget (comm) messages. Every path is capped; the autograded notebook stays small."""
# %% corr2d_multi_in
from IPython.display import display, publish_display_data
from ipykernel.comm import Comm

handle = display("start", display_id=True)
for _ in range(100):
    handle.update("u" * 1_000_000)
for _ in range(100):
    publish_display_data({"application/vnd.convcourse.call+json": {"kind": "other", "type": "r" * 1_000_000}})
for _ in range(20):
    Comm(target_name="jupyter.widget", data={"state": "w" * 1_000_000})

def corr2d_multi_in(X, K):
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))
