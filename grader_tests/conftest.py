"""Shared fixtures: a temporary copy of the course, where nbgrader runs as instructors run it."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

COURSE_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CLASS = COURSE_ROOT / "grader_tests" / "sample_class"
ASSIGNMENTS = sorted(p.name for p in (COURSE_ROOT / "source").iterdir() if p.is_dir())


# The "grading" tier, which `make check` skips: tests that use these fixtures or live in
# these modules grade notebooks or start grading kernels.
GRADING_FIXTURES = {"gradebook", "feedback", "batch_course", "unsandboxed_batch", "autograde_run",
                    "batch_run"}
GRADING_MODULES = {"test_sandbox", "test_warm", "test_browser", "test_as_ordinary_user"}


def pytest_collection_modifyitems(items):
    for item in items:
        module = getattr(item, "module", None)
        if GRADING_FIXTURES & set(getattr(item, "fixturenames", ())) or \
                getattr(module, "__name__", "") in GRADING_MODULES:
            item.add_marker(pytest.mark.grading)


def stop_grading_servers():
    """Stop this test process's sandbox and warm fork server, and so their kernels."""
    from convgrader import sandbox, warm
    if sandbox.Sandbox._instance is not None:
        sandbox.Sandbox._instance.stop()
        sandbox.Sandbox._instance = None
    if warm.ForkServer._instance is not None:
        warm.ForkServer._instance.stop()
        warm.ForkServer._instance = None


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


# Looping sample submissions wait this long per cell, and an interrupted kernel this long to
# answer; kernels are warm (torch and d2l imported), so no honest cell or test cell comes
# near it (the slowest take well under a second).
TEST_TIME_LIMITS = {"CONVCOURSE_CELL_TIMEOUT": "5", "CONVCOURSE_INTERRUPT_GRACE": "3"}


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


@pytest.fixture(scope="session")
def released_template(tmp_path_factory):
    """A course copy released once (`nbgrader generate_assignment`, SQLite gradebook), that
    no test grades in: tests that need a released course copy it (``copy_released``)."""
    return release_course(copy_course(tmp_path_factory.mktemp("template") / "course"))


def copy_released(template, destination):
    """A copy of a released course, its gradebook included (nbgrader_config.py finds the
    gradebook beside itself, so the copy uses its own)."""
    shutil.copytree(template, destination)
    return destination


@pytest.fixture(scope="session")
def released_course(released_template, tmp_path_factory):
    """A course copy with release/ regenerated by `nbgrader generate_assignment`."""
    return copy_released(released_template, tmp_path_factory.mktemp("released") / "course")


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server on loopback for this test session (CI installs PostgreSQL)."""
    import postgres
    if not postgres.available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: `make test` installs it as root")
        pytest.skip("PostgreSQL is not installed here")
    server = postgres.Server()
    yield server
    server.stop()


# Processes the tests start and that could outlive them (forked kernels call setsid, so
# they are nobody's children once their server dies) carry this session's mark in their
# environment, inherited from the test process.
SESSION_MARK = "CONVCOURSE_TEST_SESSION"


def _started_by_tests(mark):
    me = psutil.Process()
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            ours = process.pid != me.pid and process.environ().get(SESSION_MARK) == mark
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if ours:
            found.append(f"{process.pid}: {' '.join(process.info['cmdline'] or [])[:160]}")
    return found


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind():
    """At the end of the session, no process that the tests started is still running."""
    mark = os.environ[SESSION_MARK] = f"{os.getpid()}-{time.time()}"
    yield
    deadline = time.monotonic() + 10
    while (left := _started_by_tests(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, "processes the tests started are still running:\n" + "\n".join(left)


# Deeper than this below pytest's temporary root, a folder is a test's deep tree (a submission
# or a kernel made it): pytest's own cleanup would recurse into it.
PRUNE_DEPTH = 30


def _prune_deep_folders(top):
    """Remove, with convgrader.fs (no recursion, no long path), every folder PRUNE_DEPTH
    levels below ``top``."""
    from convgrader import fs
    todo = [(str(top), 0)]
    while todo:
        folder, depth = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 >= PRUNE_DEPTH:
                    fs.remove_tree(entry.path)
                else:
                    todo.append((entry.path, depth + 1))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    """pytest removes the temporary folders of runs older than the last three (and the
    "garbage-*" ones a failed removal left) with shutil.rmtree, which recurses: a tree
    thousands of folders deep, as the tests of deep submissions make, raised RecursionError
    there and made a run whose tests all passed exit with 1 (and every later run too).
    Before pytest's cleanup, prune such trees in every run's folder under pytest's root."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    basetemp = getattr(factory, "_basetemp", None)
    if basetemp is None or factory._given_basetemp is not None:
        return  # no tmp_path this session, or the user's own --basetemp (pytest keeps it)
    for run in basetemp.parent.iterdir():
        if run.is_dir() and not run.is_symlink() and \
                (run.name.startswith("garbage-") or run.name.startswith("pytest-")):
            _prune_deep_folders(run)
