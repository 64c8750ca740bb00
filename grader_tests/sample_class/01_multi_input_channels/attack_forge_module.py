"""Attack: returns None, and replaces the course's checks and records, its kernel-side call
handler and torch's comparisons in every way a kernel can (sys.modules, the modules'
functions)."""
# %% corr2d_multi_in
import sys, types
import convcourse.checks, convcourse.records, convgrader.kernels.inside.calls

fake = types.ModuleType("convcourse.checks")
fake.check_tensor = fake.check_shape_tuple = lambda *args, **kwargs: None
fake.observe = lambda got: {"kind": "tensor", "shape": [2, 2], "floating": True, "values": None}
sys.modules["convcourse.checks"] = sys.modules["convcourse.records"] = fake
convcourse.checks.observe = convcourse.records.observe = fake.observe
convcourse.checks.check_tensor = fake.check_tensor
convgrader.kernels.inside.calls.call = lambda name, payload: None
torch.testing.assert_close = lambda *args, **kwargs: None

def corr2d_multi_in(X, K):
    return None
