"""Grading as a Slurm job array, on a real single-node cluster (grader_tests/slurm_cluster.py).

A whole copy of the course (its .venv a link to the tests' venv), the honest students of two
assignments and one malformed submission, a PostgreSQL gradebook on loopback shared by the
tasks; `sbatch --array=0-1 --cpus-per-task=1 deploy/slurm/grade.sbatch`, the course's own
batch script, each task grading its shard (`--shard auto`) with one worker. Once task 1 has
graded part of its shard it is killed and requeued (`scontrol requeue`): its second run
grades what is left. Asserted: every grade exactly as expected.toml gives it, each
submission once in the gradebook, the requeued task's second run skipping what it had
graded, the malformed submission refused with its reason, and `convgrader.batch report`
printing the class table and that failure.

Needs root (the daemons run as root) and Slurm, munge and PostgreSQL (`make test` installs
them as root); skipped without them, failed under CI.
"""
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from convgrader import fs
from convgrader.batch import in_shard
from convgrader.course import is_graded
from convgrader.tools import sample_class
from course_copies import (ASSIGNMENTS, SAMPLE_CLASS, TEST_TIME_LIMITS, copy_checkout,
                           release_course, run_in)
from gradebooks import gradebook_rows, honest_rows, keep_only

pytestmark = pytest.mark.grading

GRADED = ASSIGNMENTS[:2]
BROKEN = ("broken_notebook", ASSIGNMENTS[0])  # (student, assignment): not JSON


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("the test cluster's Slurm and munge daemons run as root")
    import slurm_cluster
    lacking = slurm_cluster.missing()
    if lacking:
        message = f"{', '.join(lacking)} missing: `make slurm` installs them as root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cluster = slurm_cluster.Cluster(cpus=2)
    yield cluster
    cluster.stop()


def graded_by(db_url, students):
    """How many of ``students``' submissions the gradebook holds graded."""
    with Gradebook(db_url) as gb:
        return sum(is_graded(s) for a in gb.assignments for s in a.submissions
                   if s.student.id in students)


@pytest.fixture(scope="module")
def array_job(cluster, postgres_server):
    db_url = postgres_server.create_database("conv_basics_slurm")
    # Not under pytest's root-only folder: graded as root, the sandbox runs as an account of
    # its own, which must read the copy's packages (README: who the kernel is on the host).
    top = Path(tempfile.mkdtemp(prefix="convcourse-slurm-", dir="/tmp"))
    os.chmod(top, 0o755)
    course = copy_checkout(top / "course")
    (course / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    shutil.rmtree(course / "release")  # generate_assignment skips (and records nothing) else
    release_course(course, db_url=db_url)
    sample_class.build(SAMPLE_CLASS, course / "release", course / "submitted")
    keep_only(course / "submitted", honest_rows(GRADED))
    student, assignment = BROKEN
    broken = course / "submitted" / student / assignment
    broken.mkdir(parents=True)
    (broken / f"{assignment}.ipynb").write_text("{ this is not JSON")
    (course / "logs").mkdir()
    env = {**TEST_TIME_LIMITS, "CONVCOURSE_DB_URL": db_url,
           "PATH": f"{course}/.venv/bin:/usr/bin:/bin"}
    submitted = time.monotonic()
    job = cluster.submit(["--array=0-1", "--cpus-per-task=1", "deploy/slurm/grade.sbatch"],
                         cwd=course, env=env)
    # Task 1, killed and requeued once it has graded part of its shard.
    shard_1 = {s for _, s in honest_rows(GRADED) if in_shard(s, 1, 2)}
    deadline = time.monotonic() + 600
    while graded_by(db_url, shard_1) < 2:
        assert cluster.tasks(job).get("1") in ("PENDING", "RUNNING", "CONFIGURING"), \
            f"task 1 ended before it was killed: {cluster.tasks(job)}\n{logs(course)}"
        assert time.monotonic() < deadline, f"task 1 graded nothing\n{logs(course)}"
        time.sleep(0.5)
    killed_after = graded_by(db_url, shard_1)
    cluster.requeue_now(f"{job}_1")
    cluster.wait(job)
    timing = {task: cluster.job_info(f"{job}_{task}") for task in ("0", "1")}
    assert timing["1"]["JobState"] == "COMPLETED", \
        f"the requeued task: {timing['1']}\n{logs(course)}\n{cluster.logs()}"
    print(f"\nSlurm array job {job}: {time.monotonic() - submitted:.1f} s from sbatch to the "
          f"end; task 1 killed after {killed_after} graded submissions")
    report = run_in(course, sys.executable, "-m", "convgrader.batch", "report",
                    db_url=db_url, check=False)
    yield course, db_url, killed_after, timing, report
    fs.remove_tree(top)


def logs(course):
    return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted((course / "logs").glob("*")))


def task_log(course, task):
    (path,) = (course / "logs").glob(f"grade-*_{task}.log")
    return path.read_text()


def test_the_array_grades_every_submission_exactly_once(array_job):
    course, db_url, _, _, _ = array_job
    rows = gradebook_rows(db_url)  # fails if a submission is in the gradebook twice
    assert {k: v for k, v in rows.items() if k[1] != BROKEN[0]} == honest_rows(GRADED), \
        logs(course)
    for assignment, student in honest_rows(GRADED):
        assert (course / "autograded" / student / assignment / f"{assignment}.ipynb").is_file()


def test_each_task_grades_its_own_shard_with_the_cpus_it_was_given(array_job):
    course, _, _, _, _ = array_job
    for task in ("0", "1"):
        log = task_log(course, task)
        assert f"Slurm array task {task}:" in log, log
        assert "1 CPUs" in log, log


def test_the_requeued_task_skips_what_it_had_graded(array_job):
    course, _, killed_after, _, _ = array_job
    log = task_log(course, "1")
    assert "DUE TO JOB REQUEUE" in log and "restart 1" in log, log
    runs = re.findall(r"Slurm array task 1: (\d+) submissions, (\d+) to grade, (\d+) graded before",
                      log)
    assert len(runs) == 2, log
    (total, first_todo, first_done), (total_again, todo, done) = runs
    assert first_done == "0" and total == total_again == first_todo, log
    # What the gradebook held graded when the task was killed, less perhaps the one whose
    # graded notebook was still being written (graded again, rightly), is skipped.
    assert int(done) >= killed_after - 1 >= 1 and int(todo) == int(total) - int(done), log


def test_a_malformed_submission_is_refused_and_reported_with_its_reason(array_job):
    course, _, _, _, report = array_job
    student, assignment = BROKEN
    reason = (course / "grading_failures" / student / f"{assignment}.txt").read_text()
    assert "is not valid JSON" in reason
    assert report.returncode == 1, report.stdout  # not every submission is graded
    assert f"FAILED {assignment} {student}: " in report.stdout
    assert "is not valid JSON" in report.stdout


def test_the_report_prints_the_class_table_from_the_shared_gradebook(array_job):
    _, _, _, _, report = array_job
    lines = report.stdout.splitlines()
    for (assignment, student), points in honest_rows(GRADED).items():
        (row,) = [line for line in lines if line.split()[:1] == [student]]
        assert f"{sum(points.values()):g}/" in row, row
    total = len(honest_rows(GRADED))
    for assignment in GRADED:
        mine = sum(a == assignment for a, _ in honest_rows(GRADED))
        broken = int(assignment == BROKEN[1])
        assert re.search(rf"^{assignment}\s+{mine + broken}\s+{mine}\s+{broken}\s+0$",
                         report.stdout, re.MULTILINE), report.stdout
    assert total > 4


def test_the_scheduler_start_up_per_task_is_printed(array_job):
    """Not a timed test: the figures of what the scheduler costs, for the README."""
    _, _, _, timing, _ = array_job
    for task, info in timing.items():
        assert info["JobState"] == "COMPLETED", \
            f"task {task}: {info['JobState']} ({info.get('Reason')}, exit {info.get('ExitCode')})"
        print(f"task {task}: submitted {info['SubmitTime']}, started {info['StartTime']}, "
              f"ended {info['EndTime']}, restarts {info.get('Restarts')}")
