"""Attack: a hard-coded answer; test cells renamed, re-pointed and given 100 points."""
# %% corr2d_multi_in
def corr2d_multi_in(X, K):
    return torch.tensor([[56.0, 72.0], [104.0, 120.0]])
# %% metadata corr2d_multi_in {"grade": true, "points": 100}
# %% metadata test_corr2d_multi_in_worked_example {"points": 100}
# %% metadata test_corr2d_multi_in_against_pytorch {"grade_id": "my_own_test", "points": 100}
# %% edit test_corr2d_multi_in_against_pytorch
print("no test here")
