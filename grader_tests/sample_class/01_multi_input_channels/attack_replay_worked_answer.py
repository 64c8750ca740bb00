"""Attack: the kernel-side call handler replaced by one that reports the worked example's
answer for every call, whatever the function computes: only what is true of every input
passes (here the worked example, as a hard-coded answer would)."""
# %% corr2d_multi_in
import base64
import convcourse.records
import convgrader.kernels.inside.calls
from IPython.display import publish_display_data

WORKED = torch.tensor([[56.0, 72.0], [104.0, 120.0]], dtype=torch.float64)

def _forged(name, payload):
    values = base64.b64encode(WORKED.numpy().tobytes()).decode()
    publish_display_data({convcourse.records.MIME: {
        "kind": "tensor", "shape": [2, 2], "dtype": "torch.float32", "floating": True,
        "values": values}})

convgrader.kernels.inside.calls.call = _forged

def corr2d_multi_in(X, K):
    return torch.zeros(1)
