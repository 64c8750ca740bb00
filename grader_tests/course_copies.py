"""Copies of the course for the tests, and the commands run in them as instructors run them.

Where the course is (COURSE_ROOT, SAMPLE_CLASS, ASSIGNMENTS), the environment course commands
get (the tests' short time limits, the session's mark on every process), and the copies:
the instructor's part (copy_course), a whole checkout (copy_checkout), a released course
(release_course, copy_released). Test modules and the scripts beside them (exchange_flow.py,
output_floods.py, slurm_cluster.py) import it; conftest.py's fixtures are built on it.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

COURSE_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CLASS = COURSE_ROOT / "grader_tests" / "sample_class"
ASSIGNMENTS = sorted(p.name for p in (COURSE_ROOT / "source").iterdir() if p.is_dir())

# Looping sample submissions wait this long per cell, and an interrupted kernel this long to
# answer; kernels are warm (torch and d2l imported), so no honest cell or test cell comes
# near it (the slowest take well under a second).
TEST_TIME_LIMITS = {"CONVCOURSE_CELL_TIMEOUT": "5", "CONVCOURSE_INTERRUPT_GRACE": "3"}

# Processes the tests start and that could outlive them (forked kernels call setsid, so
# they are nobody's children once their server dies) carry this session's mark in their
# environment, inherited from the test process (conftest's no_process_left_behind sets it
# and looks for them at the end).
SESSION_MARK = "CONVCOURSE_TEST_SESSION"


def course_env(db_url=None):
    """The environment course commands run with: the venv's bin/ on PATH (nbgrader runs
    alembic from it), the course copy's own SQLite gradebook unless ``db_url`` says."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("CONVCOURSE_DB_URL", None)
    if db_url:
        env["CONVCOURSE_DB_URL"] = db_url
    env.update(TEST_TIME_LIMITS)
    return env


def run_in(course, *command, db_url=None, check=True):
    """Run a command in the course copy; fail with its output if it fails."""
    result = subprocess.run(command, cwd=course, env=course_env(db_url),
                            capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def nbgrader(course, *args, db_url=None):
    """Run an nbgrader command in ``course``, as an instructor would."""
    return run_in(course, sys.executable, "-m", "nbgrader", *args, db_url=db_url)


def copy_checkout(destination):
    """The whole course as `cp -r` of a checkout gives it (a new term's copy, a second clone):
    every file git tracks or would track, its own convcourse/ package included, no venv."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=COURSE_ROOT, capture_output=True,
                            check=True).stdout.split(b"\0")
    for name in filter(None, listed):
        source = COURSE_ROOT / os.fsdecode(name)
        if source.is_file() and not source.is_symlink():  # not a file deleted meanwhile
            (destination / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name.decode())
    return destination


def copy_course(destination):
    """The instructor's part of the course (config and source/) copied to ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy(COURSE_ROOT / "nbgrader_config.py", destination)
    shutil.copytree(COURSE_ROOT / "source", destination / "source")
    return destination


def release_course(course, db_url=None):
    """Run `nbgrader generate_assignment` for every assignment of the course copy: one
    process for all (nbgrader takes a glob), 5 s instead of 20 s for eight."""
    nbgrader(course, "generate_assignment", "*", db_url=db_url)
    return course


def copy_released(template, destination):
    """A copy of a released course, its gradebook included (nbgrader_config.py finds the
    gradebook beside itself, so the copy uses its own)."""
    shutil.copytree(template, destination)
    return destination
