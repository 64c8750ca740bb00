"""A student's Validate runs their notebook in their own kernel, never in the grading sandbox.

`nbgrader validate` (and JupyterLab's Validate button, which reads the same
nbgrader_config.py) is the student's check before submitting: the notebook's own kernelspec
(python3), no sandbox or fork server started and none left behind, as an ordinary user.
The sandbox is for grading only: test_only_autograde_runs_in_the_sandbox resolves the
course config as nbgrader does for both (no kernel started), and the sample class's attacks
on source/ and the gradebook, graded with `nbgrader autograde`, earn their expected zero
only inside it (test_autograde.py, test_autograde_gives_the_expected_points).

Two `nbgrader validate` runs, each starting one plain kernel: a correct answer (the notes'
code) and a wrong one (a flipped kernel), both sample-class answers in a release notebook.
"""
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
import pytest

import users
from convgrader.course import load_config
from convgrader.kernels.sandbox import KERNEL_NAME as SANDBOX
from convgrader.notebooks import read
from convgrader.tools import sample_class
from course_copies import COURSE_ROOT, SAMPLE_CLASS, copy_course

ASSIGNMENT = "01_multi_input_channels"
# Every process a validate run starts carries this mark in its environment, so that the
# test finds its own processes among those of other tests running on the machine.
MARK = "CONVCOURSE_VALIDATE_RUN"
# The two validate runs take about 30 s (each kernel imports torch): like the tests that
# grade, they are left out of `make check`'s edit loop; the config test below stays in it.
slow = pytest.mark.grading


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    pid: int
    uid: int = None
    seen: dict = field(default_factory=dict)  # pid -> command line of every process seen
    left: list = field(default_factory=list)  # processes still running after it ended


def _marked(token):
    found = {}
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if process.environ().get(MARK) == token:
                found[process.pid] = " ".join(process.info["cmdline"] or [])
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def validate(user, course, notebook):
    """Run `nbgrader validate` on ``notebook`` as ``user``, from the course folder (where a
    student's JupyterLab runs), watching every process it starts."""
    token = uuid.uuid4().hex
    start = time.monotonic()
    with open(course / "out", "w") as out:
        process = users.popen_as(user, [sys.executable, "-m", "nbgrader", "validate", notebook],
                                 cwd=course, env={MARK: token}, stdout=out,
                                 stderr=subprocess.STDOUT)
    run = Run(None, "", 0, process.pid)
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            run.uid = watched.uids().real
            children = watched.children(recursive=True)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            children = []
        for child in children:  # one by one: a zombie among them must not hide the others
            try:
                run.seen.setdefault(child.pid, " ".join(child.cmdline()))
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                pass
        time.sleep(0.05)
    run.returncode = process.returncode
    run.seconds = time.monotonic() - start
    run.output = (course / "out").read_text()
    # A kernel has a moment to exit after nbgrader does; anything later is left behind.
    deadline = time.monotonic() + 5
    while (left := _marked(token)) and time.monotonic() < deadline:
        time.sleep(0.1)
    run.left = sorted(left.values())
    return run


STUDENTS = ("notes_code", "flipped_kernel")


@dataclass
class Validated:
    user: users.User
    runs: dict  # sample student -> Run
    sandbox_folders: list  # what a sandbox or fork server of theirs left in /tmp


@pytest.fixture(scope="module")
def validated():
    """`nbgrader validate` on the release notebook filled with each sample student's answer,
    run by an ordinary user from a copy of the course (its nbgrader_config.py)."""
    user = users.ordinary_user()
    with users.temporary_folder(user) as folder:
        course = copy_course(folder / "course")
        shutil.copytree(COURSE_ROOT / "release" / ASSIGNMENT, course / "release" / ASSIGNMENT)
        release = sample_class.notebook_path(course / "release", ASSIGNMENT)
        notebooks = {}
        for student in STUDENTS:
            answers = sample_class.load_answers(SAMPLE_CLASS / ASSIGNMENT / f"{student}.py")
            notebooks[student] = release.with_name(f"{student}.ipynb")
            nbformat.write(sample_class.fill(read(release), answers), str(notebooks[student]))
        users.give(user, folder)
        runs = {student: validate(user, course, path) for student, path in notebooks.items()}
        # Sandbox and fork server folders are named by the pid of the process that made them
        # (the user's temporary folder is /tmp: their environment sets no TMPDIR).
        left = sorted(p.name for run in runs.values()
                      for prefix in ("convcourse-sandbox", "convcourse-warm")
                      for p in Path("/tmp").glob(f"{prefix}-{run.pid}-*"))
        yield Validated(user, runs, left)


@slow
def test_validate_passes_a_correct_answer(validated):
    run = validated.runs["notes_code"]
    assert run.returncode == 0, run.output
    assert "Success! Your notebook passes all the tests." in run.output, run.output
    assert "Traceback" not in run.output and "sandbox" not in run.output, run.output


@slow
def test_validate_fails_a_wrong_answer_saying_why(validated):
    run = validated.runs["flipped_kernel"]
    assert run.returncode == 0, run.output  # nbgrader validate reports, it does not fail
    assert "VALIDATION FAILED ON 2 CELL(S)!" in run.output, run.output
    assert "Success!" not in run.output
    # The check's own message, in the student's words, not a sandbox's refusal.
    assert "CheckFailed: corr2d_multi_in(X, K) on the worked example has the wrong values" \
        in run.output, run.output
    # Whole, to the expected-versus-got at its end (nbgrader's width of 90 cut it off).
    assert re.search(r"has the wrong values: \d+ of \d+ elements differ; at index \(\d+, \d+\) "
                     r"expected -?[\d.]+, got -?[\d.]+\.$", run.output, re.MULTILINE), run.output
    assert "sandbox" not in run.output, run.output


@slow
@pytest.mark.parametrize("student", STUDENTS)
def test_validate_runs_the_notebooks_own_kernel_and_no_sandbox(validated, student):
    commands = list(validated.runs[student].seen.values())
    assert [c for c in commands if "ipykernel_launcher" in c], \
        f"no plain kernel seen; processes: {commands}"
    assert not [c for c in commands if "convgrader.kernels.inside.server" in c or "bwrap" in c], commands
    assert not validated.sandbox_folders


@slow
@pytest.mark.parametrize("student", STUDENTS)
def test_validate_leaves_no_process_behind(validated, student):
    assert not validated.runs[student].left


@slow
def test_validate_runs_as_an_ordinary_user(validated):
    assert validated.user.uid != 0
    assert {run.uid for run in validated.runs.values()} == {validated.user.uid}


def _kernel_names(config):
    """(Validate's, autograde's) kernel name, with ``config``, for preprocessors built as
    nbgrader builds them: Execute as a child of a Validator (`nbgrader validate` and the
    Validate button's server extension), the autograde preprocessors by the converter's
    exporter (nbgrader_config.py points autograde at CheckedAutograde)."""
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import Execute
    from nbgrader.validator import Validator

    from convgrader.grading import GuardedExecute
    from convgrader.submissions import CheckedAutograde
    validate = Execute(parent=Validator(config=config))
    converter = CheckedAutograde(coursedir=CourseDirectory(config=config), config=config)
    converter.exporter = converter.exporter_class(parent=converter, config=converter.config)
    converter._sanitizing = False
    converter._init_preprocessors()
    (grade,) = [p for p in converter.exporter._preprocessors if isinstance(p, GuardedExecute)]
    return validate.kernel_name, grade.kernel_name


def test_only_autograde_runs_in_the_sandbox():
    config = load_config(COURSE_ROOT)
    # "": nbclient starts the notebook's own kernelspec (python3 for every notebook here).
    assert _kernel_names(config) == ("", SANDBOX)
    # The batch grader's --unsandboxed and --cold set Execute.kernel_name over the file's:
    # grading must follow it, and Validate stays in the student's kernel.
    config.Execute.kernel_name = "convcourse-warm"
    assert _kernel_names(config) == ("", "convcourse-warm")
