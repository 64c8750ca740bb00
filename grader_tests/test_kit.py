"""The student kit (`make kit`, convgrader/kit.py): what it holds, and that it installs and
works as a student uses it.

The quick tests build the kit and look inside. The tests marked ``kit`` (`make test-kit`,
which CI runs; `make test` skips them) do what the kit's README.md tells a student, with each
Python of CONVCOURSE_KIT_PYTHONS (default "3.11 3.13"): unzip the kit, make a venv in it,
`pip install .` and `pip install --no-deps -r requirements-d2l.txt` from the registry (pip's
own cache makes a second run quick), fill every notebook with the notes' answers (the sample
class's notes_code), run each from the top in the kit's own kernel (`jupyter nbconvert
--execute`, as Run All), and Validate them all (`nbgrader validate`). A Python that is not
on this machine skips its test, and fails it under CI.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import nbformat
import pytest

from convgrader import fs
from convgrader.notebooks import gives_away, is_solution, read
from convgrader.tools import kit, sample_class
from course_copies import ASSIGNMENTS, COURSE_ROOT, SAMPLE_CLASS

PYTHONS = os.environ.get("CONVCOURSE_KIT_PYTHONS", "3.11 3.13").split()
SUCCESS = "Success! Your notebook passes all the tests."


def find_python(version):
    """An interpreter of Python ``version`` ("3.13"): on PATH, Debian's, or pyenv's."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = [shutil.which(f"python{version}"), f"/usr/bin/python{version}",
                  *sorted(glob.glob(f"{pyenv}/versions/{version}.*/bin/python{version}"),
                          reverse=True)]
    for candidate in filter(None, candidates):
        try:
            said = subprocess.run([candidate, "-c", "import sys, venv; print('%d.%d' % "
                                   "sys.version_info[:2])"], capture_output=True, text=True,
                                  timeout=30)
        except OSError:
            continue
        if said.returncode == 0 and said.stdout.strip() == version:
            return candidate
    return None


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("kit") / kit.KIT_NAME
    return out, kit.build(out)


def test_the_kit_holds_the_release_notebooks_the_student_package_and_the_pins(built):
    out, files = built
    notebooks = [p.relative_to(COURSE_ROOT / "release") for p in kit.release_notebooks()]
    modules = [Path("convcourse") / p.name for p in kit.student_modules()]
    assert files == sorted([*notebooks, *modules, *(Path(t) for _, t in kit.FILES)])
    assert [p.parts[0] for p in notebooks] == ASSIGNMENTS
    for path in notebooks:
        assert (out / path).read_bytes() == (COURSE_ROOT / "release" / path).read_bytes()
    assert (out / "requirements.txt").read_text() == \
        (COURSE_ROOT / "requirements-student.txt").read_text()
    # The zip a student downloads holds the same files under one folder.
    with zipfile.ZipFile(f"{out}.zip") as archive:
        zipped = sorted(Path(n).relative_to(kit.KIT_NAME) for n in archive.namelist()
                        if not n.endswith("/"))
    assert zipped == files


def test_nothing_of_the_grader_is_in_the_kit(built):
    out, files = built
    assert not [f for f in files if f.parts[0] == kit.GRADER_PACKAGE]
    for path in (out / "convcourse").glob("*.py"):
        assert kit.GRADER_PACKAGE not in kit.imported_modules(path), path
    for path in out.glob("*/*.ipynb"):
        for cell in read(path).cells:
            assert gives_away(cell) is None, path


def test_the_build_refuses_a_student_module_that_imports_the_grader(tmp_path):
    shutil.copytree(COURSE_ROOT / "convcourse", tmp_path / "convcourse")
    shutil.copytree(COURSE_ROOT / "release", tmp_path / "release")
    with open(tmp_path / "convcourse" / "drawing.py", "a") as f:
        f.write("\n\ndef helper():\n    from convgrader.judge import verdict\n")
    with pytest.raises(kit.KitRefused, match="drawing.py imports convgrader"):
        kit.build(tmp_path / "out", root=tmp_path)
    assert not (tmp_path / "out").exists()


def test_the_build_refuses_a_release_notebook_with_solution_code(tmp_path):
    shutil.copytree(COURSE_ROOT / "convcourse", tmp_path / "convcourse")
    (tmp_path / "release" / ASSIGNMENTS[0]).mkdir(parents=True)
    source = next((COURSE_ROOT / "source" / ASSIGNMENTS[0]).glob("*.ipynb"))
    nb = read(source)
    for cell in nb.cells:  # the instructor's notebook, solutions and all, but no outputs
        cell.pop("outputs", None) if cell.cell_type != "code" else cell.update(outputs=[])
    nbformat.write(nb, str(tmp_path / "release" / ASSIGNMENTS[0] / source.name))
    with pytest.raises(kit.KitRefused, match="holds solution code or hidden tests"):
        kit.build(tmp_path / "out", root=tmp_path)


def test_the_build_refuses_a_release_notebook_with_outputs(tmp_path):
    shutil.copytree(COURSE_ROOT / "convcourse", tmp_path / "convcourse")
    shutil.copytree(COURSE_ROOT / "release", tmp_path / "release")
    path = kit.release_notebooks(tmp_path)[0]
    nb = read(path)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", text="an answer left in\n")]
    nbformat.write(nb, str(path))
    with pytest.raises(kit.KitRefused, match="holds outputs"):
        kit.build(tmp_path / "out", root=tmp_path)


def pins(path):
    lines = [line.split("#")[0].strip() for line in Path(path).read_text().splitlines()]
    return [line for line in lines if line]


def test_students_pins_are_exact_and_d2l_is_installed_without_its_own():
    student = pins(COURSE_ROOT / "requirements-student.txt")
    assert student and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", p) for p in student)
    names = {p.split("==")[0].lower() for p in student}
    assert {"torch", "torchvision", "numpy", "matplotlib", "jupyterlab", "nbgrader"} <= names
    assert "d2l" not in names  # its exact pins would bring numpy 1.23.5 back
    assert pins(COURSE_ROOT / "requirements-d2l.txt") == ["d2l==1.0.3"]
    assert pins(COURSE_ROOT / "requirements.txt")[0] == "-r requirements-student.txt"
    # The Makefile installs d2l the same way as the kit's README says.
    assert "--no-deps -r requirements-d2l.txt" in (COURSE_ROOT / "Makefile").read_text()
    assert "--no-deps -r requirements-d2l.txt" in (COURSE_ROOT / "kit" / "README.md").read_text()


def test_the_readmes_cpu_only_install_takes_the_kits_pins():
    readme = (COURSE_ROOT / "kit" / "README.md").read_text()
    pinned = dict(p.split("==") for p in pins(COURSE_ROOT / "requirements-student.txt"))
    (command,) = [line for line in readme.splitlines() if "download.pytorch.org/whl/cpu" in line]
    assert f"torch=={pinned['torch']} " in command, command
    assert f"torchvision=={pinned['torchvision']} " in command, command
    assert f"`{pinned['torch']}+cpu`" in readme and f"`torch=={pinned['torch']}`" in readme


def test_the_readme_offers_the_assignments_tab_on_jupyterhub_only():
    """The kit's JupyterLab turns the Assignment List and nbgrader's menu off: its README
    once told students to find them there."""
    disabled = json.loads((COURSE_ROOT / "kit" / "jupyter-config" / "page_config.json")
                          .read_text())["disabledExtensions"]
    assert disabled["@jupyter/nbgrader:assignment-list"] and disabled["@jupyter/nbgrader:menu"]
    readme = (COURSE_ROOT / "kit" / "README.md").read_text()
    assert "Nbgrader →" not in readme and "Assignment List" not in readme
    for paragraph in readme.split("\n\n"):
        if "Assignments" in paragraph:
            assert "JupyterHub" in paragraph and "not in the kit" in paragraph, paragraph


# -- the kit installed and used as a student does (make test-kit) ---------------------------

def student_env(home, venv):
    """A student's fresh shell: their own home, the kit's venv first on PATH, nothing of the
    course's venv; pip keeps its cache where it was (the registry is not asked twice)."""
    keep = {k: v for k, v in os.environ.items()
            if k in ("LANG", "LC_ALL", "TERM", "TMPDIR", "CI", "OPENBLAS_CORETYPE",
                     "OPENBLAS_L2_SIZE")}
    cache = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
    return {**keep, "HOME": str(home), "PATH": f"{venv}/bin:/usr/bin:/bin",
            "PIP_CACHE_DIR": cache, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def plain(text):
    """``text`` without the terminal's colours (jupyter's extension lists have them)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def run(command, cwd, env, timeout=1800):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, \
        f"{' '.join(map(str, command))} failed ({result.returncode}):\n" \
        f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


@pytest.mark.kit
@pytest.mark.parametrize("version", PYTHONS)
def test_the_kit_installs_and_every_notebook_passes_with_the_notes_answers(
        version, built, tmp_path):
    python = find_python(version)
    if python is None:
        message = f"no Python {version} on this machine (PATH, /usr/bin, pyenv)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    out, files = built
    home = tmp_path / "home"
    home.mkdir()
    with zipfile.ZipFile(f"{out}.zip") as archive:
        archive.extractall(home)
    folder = home / kit.KIT_NAME
    venv = folder / ".venv"
    env = student_env(home, venv)
    try:
        # The README's three commands.
        run([python, "-m", "venv", ".venv"], folder, env)
        run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "."], folder, env)
        run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps", "-r",
             "requirements-d2l.txt"], folder, env)
        grader = run([venv / "bin" / "python", "-c",
                      "import importlib.util as u; print(u.find_spec('convgrader'))"],
                     folder, env)
        assert grader.stdout.strip() == "None"

        # The notes' answer in every graded cell, then Run All in the kit's kernel.
        notebooks = []
        for assignment in ASSIGNMENTS:
            path = sample_class.notebook_path(folder, assignment)
            answers = sample_class.load_answers(SAMPLE_CLASS / assignment / "notes_code.py")
            filled = sample_class.fill(read(path), answers)
            assert all("NotImplementedError" not in c.source for c in filled.cells
                       if is_solution(c)), f"{assignment}: notes_code.py leaves a stub"
            nbformat.write(filled, str(path))
            notebooks.append(path.relative_to(folder))
        run([venv / "bin" / "jupyter", "nbconvert", "--to", "notebook", "--execute",
             "--inplace", *notebooks], folder, env)
        for path in notebooks:
            nb = read(folder / path)
            assert nb.metadata.language_info.version.startswith(f"{version}."), \
                f"{path} ran in Python {nb.metadata.language_info.version}, not the kit's"
            code = [c for c in nb.cells if c.cell_type == "code"]
            assert all(c.execution_count for c in code), f"{path}: a cell did not run"
            errors = [o for c in code for o in c.outputs if o.output_type == "error"]
            assert not errors, f"{path}: {errors[0].ename}: {errors[0].evalue}"
            stderr = "".join(o.get("text", "") for c in code for o in c.outputs
                             if o.get("name") == "stderr")
            assert "Warning" not in stderr, f"{path} warns: {stderr[:2000]}"

        # Validate, as the notebook's button does: every notebook passes.
        validated = run([venv / "bin" / "nbgrader", "validate", *notebooks], folder, env)
        assert validated.stdout.count(SUCCESS) == len(notebooks), validated.stdout[-3000:]
        # A wrong answer: the check's line whole, to its expected-versus-got (the kit's
        # nbgrader_config.py widens nbgrader's cut at 90 characters).
        wrong = folder / notebooks[0].with_name("wrong.ipynb")
        release = read(COURSE_ROOT / "release" / notebooks[0])
        answers = sample_class.load_answers(SAMPLE_CLASS / ASSIGNMENTS[0] / "flipped_kernel.py")
        nbformat.write(sample_class.fill(release, answers), str(wrong))
        refused = run([venv / "bin" / "nbgrader", "validate", wrong], folder, env).stdout
        assert re.search(r"has the wrong values: \d+ of \d+ elements differ; at index "
                         r"\(\d+, \d+\) expected -?[\d.]+, got -?[\d.]+\.$", refused,
                         re.MULTILINE), refused[-3000:]

        # JupyterLab in the kit offers Validate, not the instructor's or the exchange's tools.
        servers = run([venv / "bin" / "jupyter", "server", "extension", "list"], folder, env)
        said = plain(servers.stdout + servers.stderr)
        assert re.search(r"nbgrader\.server_extensions\.validate_assignment\s+enabled", said), said
        for tool in ("formgrader", "assignment_list", "course_list"):
            assert re.search(rf"nbgrader\.server_extensions\.{tool}\s+disabled", said), said
        labs = run([venv / "bin" / "jupyter", "labextension", "list"], folder, env)
        said = plain(labs.stdout + labs.stderr)
        for plugin in ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                       "@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:course-list",
                       # JupyterLab's question about Jupyter's news, over every notebook
                       "@jupyterlab/apputils-extension:announcements"):
            assert plugin in said.split("Disabled extensions:")[-1], said
    finally:
        fs.remove_tree(home)
