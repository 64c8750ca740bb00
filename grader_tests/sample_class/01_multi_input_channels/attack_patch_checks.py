"""Attack: a wrong answer, with the course's check functions replaced by no-ops."""
# %% corr2d_multi_in
import convcourse.checks

def corr2d_multi_in(X, K):
    return torch.zeros(1)

def check_tensor(*args, **kwargs):
    return None

convcourse.checks.check_tensor = check_tensor
