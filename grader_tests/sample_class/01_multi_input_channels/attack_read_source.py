"""Attack (sandbox): no answer of its own; runs the solution cells of the instructor's
notebook in source/. The sandbox has no source/: the function stays undefined."""
# %% corr2d_multi_in
import json
from pathlib import Path

for folder in [Path.cwd(), *Path.cwd().parents]:
    for notebook in folder.glob("source/01_*/*.ipynb"):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                exec("".join(cell["source"]))
