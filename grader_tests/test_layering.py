"""The packages' layering, as import-linter checks it in `make check` (pyproject.toml's
[tool.importlinter]): each contract holds here, and breaks when a copy breaks it."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_copies import COURSE_ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root):
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_packages_keep_their_contracts():
    result = lint_imports(COURSE_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module, added, contract", [
    ("convcourse/checks.py", "import convgrader.judge",
     "What students' notebooks import (convcourse) never imports the grader"),
    ("convgrader/kernels/inside/calls.py", "from convgrader import grading",
     "Code that runs inside the sandbox imports nothing of the grader's side"),
    ("convgrader/fs.py", "import convgrader.kernels.sandbox",  # sandbox -> fs -> sandbox
     "No import cycles between the modules of a package"),
])
def test_a_copy_that_breaks_a_contract_fails(tmp_path, module, added, contract):
    for name in ("convcourse", "convgrader", "pyproject.toml"):
        source = COURSE_ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    with open(tmp_path / module, "a") as out:
        out.write(f"\n{added}  # the contract broken on purpose\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract} BROKEN" in result.stdout
