"""Attack (sandbox): a correct answer, and writes outside its folder: the course's config
(a 0 s cell timeout for everyone after) and a file in the course root. The sandbox refuses."""
# %% corr2d_multi_in
from pathlib import Path

for folder in [Path.cwd(), *Path.cwd().parents]:
    if (folder / "nbgrader_config.py").exists():
        try:
            (folder / "PWNED").write_text("written by a student")
            with open(folder / "nbgrader_config.py", "a") as config:
                config.write("\nc.Execute.timeout = 0\n")
        except OSError:
            pass

def corr2d_multi_in(X, K):
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))
