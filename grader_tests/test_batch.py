"""The batch grader: parallel, warm, and giving exactly the grades of `nbgrader autograde`."""
import os
import shutil
import sys

import nbformat
import pytest
from nbgrader.api import Gradebook

import users
from convgrader.batch import in_shard
from convgrader.notebooks import read
from convgrader.tools import sample_class
from course_copies import (ASSIGNMENTS, COURSE_ROOT, SAMPLE_CLASS, TEST_TIME_LIMITS,
                           copy_checkout, copy_released, run_in)
from gradebooks import expected_rows, gradebook_rows, honest_rows, keep_only
from tiers import grading_fixture


@grading_fixture(scope="module")
def batch_course(released_template):
    """The sample class graded by `python -m convgrader.batch --workers 2`, and the function
    that runs the batch grader there again: as an instructor who is not root (in the sandbox
    with the limits such a user gets), in a whole copy of the course with its own convcourse/
    package, and a .venv that is a symbolic link to the tests' venv, its SQLite gradebook
    written by two workers at once. (A PostgreSQL gradebook written by two graders at once:
    test_slurm.py.)"""
    user = users.ordinary_user()
    with users.temporary_folder(user) as folder:
        course = copy_checkout(folder / "course")
        shutil.copy(released_template / "gradebook.db", course)  # generate_assignment's
        (course / ".venv").symlink_to(sys.prefix, target_is_directory=True)
        db_url = f"sqlite:///{course / 'gradebook.db'}"

        def batch(*args, check=False):
            result = users.run_as(user, [course / ".venv" / "bin" / "python", "-m",
                                         "convgrader.batch", *args], cwd=course,
                                  env={**TEST_TIME_LIMITS, "PATH": f"{course}/.venv/bin:/usr/bin:/bin"})
            if check and result.returncode != 0:
                raise AssertionError(f"batch {args} failed:\n{result.stdout}\n{result.stderr}")
            return result
        sample_class.build(SAMPLE_CLASS, course / "release", course / "submitted")
        users.give(user, folder)
        first = batch("--workers", "2")
        yield course, db_url, first, batch


@pytest.mark.grading
def test_batch_grades_every_submission_exactly(batch_course):
    course, db_url, first, _ = batch_course
    assert first.returncode == 0, first.stdout + first.stderr
    assert gradebook_rows(db_url) == expected_rows()
    for assignment, student in expected_rows():
        assert list((course / "autograded" / student / assignment).glob("*.ipynb"))


@pytest.mark.grading
def test_batch_ends_with_a_summary(batch_course):
    _, db_url, first, _ = batch_course
    assert f"{len(expected_rows())} notebooks graded in" in first.stdout
    for assignment, _ in expected_rows():
        assert assignment in first.stdout


@pytest.mark.grading
def test_batch_skips_what_is_graded_unless_forced(batch_course):
    course, db_url, _, batch = batch_course
    again = batch(check=True)
    assert "0 notebooks graded" in again.stdout
    forced = batch(ASSIGNMENTS[0], "--student", "notes_code", "--student", "hardcoded",
                   "--force", check=True)
    assert "2 notebooks graded" in forced.stdout
    assert gradebook_rows(db_url) == expected_rows()


def test_shards_split_a_class_into_disjoint_parts():
    students = [f"student{i:04d}" for i in range(200)]
    parts = [{s for s in students if in_shard(s, k, 3)} for k in range(3)]
    assert set().union(*parts) == set(students)
    assert sum(len(p) for p in parts) == len(students)
    assert all(40 < len(p) < 95 for p in parts)


KILL_THE_GRADER = """\
import os, signal, psutil
# The kernel's parent is the fork server; the server's parent is the worker grading it.
os.kill(psutil.Process(os.getppid()).ppid(), signal.SIGKILL)
"""


# Graded without the sandbox: the honest students of the killer's assignment.
UNSANDBOXED_ASSIGNMENTS = ASSIGNMENTS[:1]


@grading_fixture(scope="module")
def unsandboxed_batch(released_template, tmp_path_factory):
    """The honest students of one assignment, and one submission that kills the worker
    grading it, graded by the batch grader with warm kernels and no sandbox."""
    course = copy_released(released_template, tmp_path_factory.mktemp("unsandboxed") / "course")
    sample_class.build(SAMPLE_CLASS, course / "release", course / "submitted")
    keep_only(course / "submitted", honest_rows(UNSANDBOXED_ASSIGNMENTS))
    release = sample_class.notebook_path(course / "release", ASSIGNMENTS[0])
    killer = course / "submitted" / "kills_its_worker" / ASSIGNMENTS[0] / release.name
    killer.parent.mkdir(parents=True)
    nbformat.write(sample_class.fill(read(release), [
        sample_class.Edit("fill", "corr2d_multi_in", KILL_THE_GRADER)]), str(killer))
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    result = run_in(course, sys.executable, "-m", "convgrader.batch", "--workers", "2",
                    "--unsandboxed", db_url=db_url, check=False)
    return gradebook_rows(db_url), result


@pytest.mark.grading
def test_honest_grades_are_the_same_without_the_sandbox(unsandboxed_batch):
    """The sandbox changes nothing for honest work: graded unconfined, the grades are the same."""
    graded, _ = unsandboxed_batch
    assert {k: v for k, v in graded.items() if k[1] != "kills_its_worker"} == \
        honest_rows(UNSANDBOXED_ASSIGNMENTS)


@pytest.mark.grading
def test_a_submission_that_kills_its_worker_is_named_and_the_others_graded(unsandboxed_batch):
    """Unsandboxed, a kernel can kill the worker grading it (the sandbox prevents it). The
    pool breaks; every other submission still gets its exact grade (above), and the killer
    is named, whichever submissions the other worker had begun."""
    _, result = unsandboxed_batch
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failed == [f"FAILED {ASSIGNMENTS[0]} kills_its_worker: the grading worker died"]


def test_a_submission_folder_too_deep_to_walk_is_graded_again_not_a_crash(tmp_path):
    """os.walk recurses: a submitted tree 1500 folders deep once raised RecursionError while
    the batch looked for what was already graded, stopping it for the whole class."""
    from types import SimpleNamespace

    from convgrader.course import already_graded
    (tmp_path / "autograded" / "s" / "a").mkdir(parents=True)
    # Graded by every other sign (the row's grades, the executed notebook), so that the
    # walk of the submitted folder is what decides.
    executed = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "1", outputs=[nbformat.v4.new_output("stream", text="1\n")])])
    nbformat.write(executed, str(tmp_path / "autograded" / "s" / "a" / "a.ipynb"))
    (tmp_path / "submitted" / "s" / "a").mkdir(parents=True)
    folder = os.open(tmp_path / "submitted" / "s" / "a", os.O_RDONLY)
    for _ in range(1500):
        os.mkdir("d", dir_fd=folder)
        inner = os.open("d", os.O_RDONLY, dir_fd=folder)
        os.close(folder)
        folder = inner
    os.close(folder)

    grade = SimpleNamespace(auto_score=1.0, manual_score=None)
    submission = SimpleNamespace(notebooks=[SimpleNamespace(name="a", grades=[grade])])

    class Graded:
        def find_submission(self, assignment, student):
            return submission
    assert already_graded(tmp_path, Graded(), "a", "s") is False


WHICH_PACKAGE = """
import sys
import convcourse, nbformat
from nbclient import NotebookClient
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    "import convcourse, convcourse.checks; print(convcourse.__file__, convcourse.checks.__file__)")])
NotebookClient(nb, kernel_name="convcourse-sandbox", timeout=60,
               resources={"metadata": {"path": sys.argv[1]}}).execute()
print(convcourse.__file__)
print(nb.cells[0].outputs[0]["text"].strip())
"""


@pytest.mark.grading
def test_a_copied_course_grades_with_its_own_package(batch_course):
    """The grader and its sandboxed kernels import the copy's convcourse/, not the package
    the venv's editable install names (the tests' checkout): grades above, source here."""
    course, *_ = batch_course
    result = users.run_as(users.ordinary_user(), [
        course / ".venv" / "bin" / "python", "-c", WHICH_PACKAGE, course / "submitted"],
        cwd=course, env={"PYTHONPATH": str(course)})  # as nbgrader puts the course first
    assert result.returncode == 0, result.stderr
    package = course.resolve() / "convcourse"
    assert result.stdout.split() == [str(package / "__init__.py"), str(package / "__init__.py"),
                                     str(package / "checks.py")]


def test_shard_auto_comes_from_the_schedulers_array():
    from convgrader.batch import NoShard, parse_shard
    slurm = {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "3",
             "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert parse_shard("auto", slurm)[:2] == (2, 4)  # --array=3-9:2 -> tasks 3, 5, 7, 9
    assert parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"})[:2] \
        == (1, 2)
    assert parse_shard("auto", {"JOB_COMPLETION_INDEX": "3", "CONVCOURSE_SHARDS": "5"})[:2] == (3, 5)
    assert parse_shard("2/3", {})[:2] == (2, 3)
    for text, env, reason in [
            ("auto", {}, "SLURM_ARRAY_TASK_ID"),
            ("auto", {"JOB_COMPLETION_INDEX": "0"}, "CONVCOURSE_SHARDS"),
            ("auto", {"JOB_COMPLETION_INDEX": "5", "CONVCOURSE_SHARDS": "5"}, "outside 0..4"),
            ("auto", {**slurm, "SLURM_ARRAY_TASK_ID": "6"}, "step"),
            ("3/3", {}, "K must be in 0..N-1"), ("a/b", {}, "give K/N")]:
        with pytest.raises(NoShard, match=reason):
            parse_shard(text, env)


def test_the_schedulers_files_grade_one_shard_per_task_with_their_cpus():
    import yaml
    script = (COURSE_ROOT / "deploy" / "slurm" / "grade.sbatch").read_text()
    assert "#SBATCH --array=" in script and "#SBATCH --requeue" in script
    assert '--shard auto --workers "${SLURM_CPUS_PER_TASK:-1}"' in script
    (job,) = yaml.safe_load_all((COURSE_ROOT / "deploy" / "kubernetes" / "grade-job.yaml").read_text())
    spec = job["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == int(env["CONVCOURSE_SHARDS"]["value"])
    assert "--shard auto" in " ".join(container["args"])
    assert env["CONVCOURSE_DB_URL"]["valueFrom"]["secretKeyRef"]["name"]


NBGRADER_LOG = """\
[INFO] Autograding /c/autograded/s/a/a.ipynb
[ERROR] There was an error processing assignment: /c/submitted/s/a
[ERROR] Traceback (most recent call last):
  File "/v/nbgrader/converters/base.py", line 392, in convert_notebooks
    self.convert_single_notebook(notebook_filename)
RuntimeError: Kernel didn't respond in 60 seconds

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/v/x.py", line 1, in f
TimeoutError: the sandbox's fork server did not answer\x1b[31m
[ERROR] There was an error processing assignment 'a' for student 's'
[ERROR] Please see the the above traceback for details on the specific errors on the above failures.
"""


def test_a_failure_is_named_by_the_exception_in_nbgraders_log():
    """The batch printed nbgrader's last words ("Please see the above traceback") as the
    reason a submission failed, and no traceback: the instructor could not tell why."""
    from convgrader.batch import MAX_REASON, failure_cause
    assert failure_cause(NBGRADER_LOG) == "TimeoutError: the sandbox's fork server did not " \
                                          "answer [31m"
    assert failure_cause("[INFO] Autograding\n[ERROR] no traceback here\n") is None
    long = failure_cause("[ERROR] Traceback (most recent call last):\nValueError: " + "x" * 9999)
    assert len(long) == MAX_REASON + 3 and long.endswith("...")


def test_a_worker_waits_for_the_gradebook_another_worker_is_writing(tmp_path, monkeypatch):
    """The batch's workers share one SQLite gradebook; sqlite3 gives up on a lock after 5 s,
    and the notebook whose write gave up was not graded ("database is locked")."""
    import sqlite3
    import threading
    import time

    import nbgrader.api

    from convgrader import batch
    monkeypatch.setattr(nbgrader.api, "create_engine", nbgrader.api.create_engine)
    batch._reuse_database_engines()
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url):
        pass  # the tables, before the other worker locks the file
    other_worker = sqlite3.connect(tmp_path / "gradebook.db", isolation_level=None,
                                   check_same_thread=False)
    other_worker.execute("BEGIN EXCLUSIVE")
    released = threading.Timer(7, other_worker.rollback)  # longer than sqlite3's 5 s
    released.start()
    start = time.monotonic()
    try:
        with Gradebook(url) as gb:
            gb.add_student("waited")
    finally:
        released.join()
    assert time.monotonic() - start >= 6.5
    with Gradebook(url) as gb:
        assert [s.id for s in gb.students] == ["waited"]
