"""Attack (sandbox): no answer of its own; copies another student's graded cell from
submitted/. The sandbox shows no other student: the function stays undefined."""
# %% corr2d_multi_in
import json
from pathlib import Path

for folder in [Path.cwd(), *Path.cwd().parents]:
    for notebook in folder.glob("submitted/notes_code/01_*/*.ipynb"):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "corr2d_multi_in":
                exec("".join(cell["source"]))
