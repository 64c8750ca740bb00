"""Attack: returns an object that claims to equal anything (nbgrader #1379)."""
# %% corr2d_multi_in
class AlwaysEqual:
    shape = torch.Size([2, 2])
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False

def corr2d_multi_in(X, K):
    return AlwaysEqual()
