"""The student kit: what a student installs on their own machine (`make kit`).

    convgrader kit build [OUT]      # default dist/conv-basics-kit, and its .zip

The kit holds the release notebooks (release/<assignment>/*.ipynb, no solutions, no hidden
tests), the package they import (convcourse: the checks and the figures), the students'
pinned requirements (requirements-student.txt as requirements.txt, and requirements-d2l.txt),
the package's pyproject.toml and the students' README (kit/), and nothing of the grader:
the build refuses a convcourse module that imports convgrader, and a release notebook that
holds solution code or hidden tests.
"""
import argparse
import ast
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from convgrader.errors import GraderError
from convgrader.notebooks import gives_away, read
from convgrader.tools import COURSE_ROOT

STUDENT_PACKAGE = "convcourse"
GRADER_PACKAGE = "convgrader"
KIT_NAME = "conv-basics-kit"
# (in the course, in the kit)
FILES = [
    ("kit/README.md", "README.md"),
    ("kit/pyproject.toml", "pyproject.toml"),
    ("kit/jupyter-config/nbgrader_config.py", "jupyter-config/nbgrader_config.py"),
    ("kit/jupyter-config/page_config.json", "jupyter-config/page_config.json"),
    ("kit/jupyter-config/zz-conv-basics-student.json",
     "jupyter-config/zz-conv-basics-student.json"),
    ("requirements-student.txt", "requirements.txt"),
    ("requirements-d2l.txt", "requirements-d2l.txt"),
]


class KitRefused(GraderError):
    """The kit would ship something of the grader or of the solutions."""


def imported_modules(path: Path | str) -> set[str]:
    """The top-level names of the modules a Python file imports (absolute imports)."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def student_modules(root: Path = COURSE_ROOT) -> list[Path]:
    return sorted((root / STUDENT_PACKAGE).glob("*.py"))


def check_student_package(root: Path = COURSE_ROOT) -> None:
    """Refuse a student module that imports the grader."""
    for module in student_modules(root):
        if GRADER_PACKAGE in imported_modules(module):
            raise KitRefused(f"{module.relative_to(root)} imports {GRADER_PACKAGE}, which "
                             "students never get", fix="Move the code it needs to convcourse.")


def release_notebooks(root: Path = COURSE_ROOT) -> list[Path]:
    return sorted((root / "release").glob("*/*.ipynb"))


def check_release(root: Path = COURSE_ROOT) -> None:
    """Refuse a release notebook with solution code, hidden tests or outputs."""
    notebooks = release_notebooks(root)
    if not notebooks:
        raise KitRefused("release/ has no notebook", fix="Run `make release` first.")
    for path in notebooks:
        for cell in read(path).cells:
            given = gives_away(cell)
            if given:
                raise KitRefused(f"{path.relative_to(root)}: cell {cell.get('id')} holds "
                                 f"{given}", fix="Run `make release`.")


def build(out: Path | str, root: Path | str = COURSE_ROOT, archive: bool = True) -> list[Path]:
    """Write the kit to the folder ``out`` (replaced) and, with ``archive``, ``out``.zip
    beside it; the kit's files, relative to ``out``."""
    root, out = Path(root), Path(out)
    check_student_package(root)
    check_release(root)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for path in release_notebooks(root):
        target = out / path.relative_to(root / "release")
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(path, target)
    (out / STUDENT_PACKAGE).mkdir()
    for module in student_modules(root):
        shutil.copyfile(module, out / STUDENT_PACKAGE / module.name)
    for source, in_kit in FILES:
        (out / in_kit).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / source, out / in_kit)
    if archive:
        shutil.make_archive(str(out), "zip", root_dir=out.parent, base_dir=out.name)
    return sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="write the kit folder and its .zip")
    b.add_argument("out", nargs="?", default=str(COURSE_ROOT / "dist" / KIT_NAME))
    args = parser.parse_args(argv)
    try:
        files = build(args.out)
    except KitRefused as error:
        print(f"no kit built: {error}", file=sys.stderr)
        return 1
    print(f"student kit: {args.out}/ ({len(files)} files) and {args.out}.zip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
