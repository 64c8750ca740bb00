"""Grade a whole class with N workers: nbgrader's own Autograde, one submission per task.

    python -m convgrader.batch [ASSIGNMENT ...] [--student ID ...] [--workers N] [--force]
                               [--cold | --unsandboxed] [--shard K/N | --shard auto]
    python -m convgrader.batch report        # the class table and what failed, and why

Run it in the course directory, after ``nbgrader generate_assignment`` (``make release``)
and with submissions in ``submitted/<student>/<assignment>/``. Each worker process holds
an ``NbGraderAPI`` with the course's nbgrader_config.py and runs ``api.autograde`` for one
(student, assignment) at a time, so the gradebook rows and autograded/ notebooks are those
of ``nbgrader autograde``. Kernels are those nbgrader_config.py names: sandboxed and warm
(forked from a process that has imported torch and d2l, see ``convgrader.kernels``);
``--unsandboxed`` and ``--cold`` (stock kernels) are for benchmarks.
Submissions already graded are skipped unless ``--force``; a submission that fails is
reported and the batch goes on.

Workers grade with ``convgrader.submissions.CheckedAutograde``, as ``nbgrader autograde``
does with the course's config: a submission folder holding links, devices, FIFOs or sockets,
an oversized folder or a malformed notebook is refused before anything is copied, and the
summary names it with its reason (``FAILED <assignment> <student>: <reason>``), and so does
``grading_failures/<student>/<assignment>.txt`` until the submission is graded.

On a cluster, each task of a scheduler's array grades one shard, ``--shard auto``: its index
and the shards' count come from Slurm's job array (``SLURM_ARRAY_TASK_ID``, ``_MIN``,
``_STEP``, ``_COUNT``) or from a Kubernetes Indexed Job (``JOB_COMPLETION_INDEX``, and the
completions in ``CONVCOURSE_SHARDS``: Kubernetes does not expose them). A task that runs
again (a retry, a requeue) skips what is graded, so a submission is graded once;
``report`` then reads the shared gradebook (deploy/ has the scheduler's files).
"""
import argparse
import concurrent.futures
import multiprocessing
import os
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.queues import SimpleQueue
from pathlib import Path
from typing import Any

import nbgrader.api
import sqlalchemy
from tqdm import tqdm

from convgrader.course import (already_graded, load_config, open_gradebook, record_outcome,
                               submissions)
from convgrader.errors import GraderError
from convgrader.kernels.clients import STOCK_CLIENT
from convgrader.submissions import refusal_in_log, use_checked_autograde

_api: Any = None  # the worker process's NbGraderAPI (nbgrader has no type hints)
# Where the worker says which submission it begins: (assignment, student).
_started: "SimpleQueue[tuple[str, str]] | None" = None

Work = list[tuple[str, str]]  # (assignment, student) of submissions


def _init_worker(course_root: str, kernel_name: str | None,
                 started: "SimpleQueue[tuple[str, str]] | None" = None) -> None:
    global _api, _started
    _started = started
    os.chdir(course_root)
    # One worker per core: its kernels, stock ones too, compute on one thread (as the warm
    # fork server's do); more OpenMP threads would spin against the other workers.
    os.environ["OMP_NUM_THREADS"] = "1"
    # Only the workers grade: nbgrader's apps (and Jupyter's with them) load in them alone.
    from nbgrader.apps import NbGraderAPI
    _reuse_database_engines()
    config = load_config(course_root)
    use_checked_autograde()  # nbgrader_config.py does too; the batch does not depend on it
    if kernel_name:
        config.Execute.kernel_name = kernel_name
    if kernel_name == "python3":  # --cold: stock kernels, started by the stock client
        config.AsyncKernelManager.client_class = STOCK_CLIENT
    _api = NbGraderAPI(config=config)


# Workers share one SQLite gradebook, and SQLite lets one write at a time. sqlite3 waits 5 s
# for the lock, then fails that notebook's grading ("database is locked", nbgrader's "Please
# see the above traceback"); a loaded machine's other worker can hold the lock that long.
SQLITE_BUSY_SECONDS = 120


def _reuse_database_engines() -> None:
    """One SQLAlchemy engine per database in this worker, instead of one per Gradebook.

    nbgrader opens about eleven Gradebooks per notebook, each with a new engine, so with an
    empty cache of compiled queries: a third of the grader's CPU time per notebook here.
    ``Gradebook.close()`` disposes of the engine's connection pool, which the engine renews;
    the rows written are the same.
    """
    engines: dict[tuple[str, tuple[tuple[str, Any], ...]], sqlalchemy.engine.Engine] = {}

    def create_engine(url: str | sqlalchemy.engine.URL, **kwargs: Any) -> sqlalchemy.engine.Engine:
        key = (str(url), tuple(sorted(kwargs.items())))
        if key not in engines:
            if sqlalchemy.engine.make_url(url).get_backend_name() == "sqlite":
                kwargs["connect_args"] = {"timeout": SQLITE_BUSY_SECONDS}
            engines[key] = sqlalchemy.create_engine(url, **kwargs)
        return engines[key]

    nbgrader.api.create_engine = create_engine


def _grade(assignment: str, student: str) -> dict[str, Any]:
    if _started is not None:
        _started.put((assignment, student))
    start = time.monotonic()
    try:
        result = _api.autograde(assignment, student, force=True, create=False)
    except Exception as error:  # nbgrader reports its own failures in result
        result = {"success": False, "error": f"{type(error).__name__}: {error}"}
    refused = None if result["success"] else refusal_in_log(result.get("log"), student,
                                                            assignment)
    reason = refused if refused is not None else \
        failure_cause(result.get("log")) or "".join((result.get("error") or "").strip()
                                                    .splitlines()[-1:])
    return {"assignment": assignment, "student": student, "success": result["success"],
            "seconds": time.monotonic() - start, "error": [reason]}


# A reason is one line in the instructor's terminal and the class report: printable, short.
MAX_REASON = 300


def failure_cause(log: str | None) -> str | None:
    """Why nbgrader could not grade a submission: the exception its last traceback in the
    captured log (``capture_log``: "[LEVEL] message" lines, a traceback's lines after its
    first) ends with. nbgrader's own exception only says "Please see the above traceback"."""
    cause, in_traceback = None, False
    for line in (log or "").splitlines():
        if line.startswith("["):
            in_traceback = line.endswith("Traceback (most recent call last):")
        elif in_traceback and line.strip() and not line[0].isspace() and \
                not line.startswith(("During handling of", "The above exception")):
            cause = line.strip()
    if cause is None:
        return None
    printable = "".join(c if c.isprintable() else " " for c in cause)
    return printable[:MAX_REASON] + ("..." if len(printable) > MAX_REASON else "")


class NoShard(GraderError):
    """``--shard auto`` outside a scheduler's array, or with values that make no shard."""


def scheduler_shard(env: Mapping[str, str] | None = None) -> tuple[int, int, str]:
    """(shard, shards, where they came from) from a Slurm array task's or a Kubernetes
    Indexed Job pod's environment."""
    env = os.environ if env is None else env
    try:
        if "SLURM_ARRAY_TASK_ID" in env:
            step = int(env.get("SLURM_ARRAY_TASK_STEP", "1"))
            offset = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
            shard, shards = offset // step, int(env["SLURM_ARRAY_TASK_COUNT"])
            if offset % step:
                raise ValueError("the task id is not on the array's step")
            where = f"Slurm array task {env['SLURM_ARRAY_TASK_ID']}"
        elif "JOB_COMPLETION_INDEX" in env:
            if "CONVCOURSE_SHARDS" not in env:
                raise NoShard("a Kubernetes Indexed Job names its index (JOB_COMPLETION_INDEX) "
                              "but not the completions",
                              fix="Set CONVCOURSE_SHARDS to the Job's completions.")
            shard, shards = int(env["JOB_COMPLETION_INDEX"]), int(env["CONVCOURSE_SHARDS"])
            where = f"Kubernetes completion index {shard}"
        else:
            raise NoShard("--shard auto needs a scheduler's array: SLURM_ARRAY_TASK_ID "
                          "(sbatch --array) or JOB_COMPLETION_INDEX (a Kubernetes Indexed "
                          "Job) is not set", fix="Give --shard K/N instead.")
    except (KeyError, ValueError) as error:
        raise NoShard(f"the scheduler's array variables make no shard: {error}") from None
    if not 0 <= shard < shards:
        raise NoShard(f"{where} is shard {shard}, outside 0..{shards - 1}")
    return shard, shards, where


def parse_shard(text: str, env: Mapping[str, str] | None = None) -> tuple[int, int, str]:
    """(shard, shards, where) from ``--shard K/N`` or ``--shard auto``."""
    if text == "auto":
        return scheduler_shard(env)
    try:
        shard, shards = (int(n) for n in text.split("/"))
    except ValueError:
        raise NoShard(f"--shard {text}: give K/N (0 <= K < N) or auto") from None
    if not 0 <= shard < shards:
        raise NoShard(f"--shard {text}: K must be in 0..N-1")
    return shard, shards, f"shard {shard}/{shards}"


def in_shard(student: str, shard: int, shards: int) -> bool:
    """Whether ``student`` is graded by machine ``shard`` of ``shards`` (stable everywhere)."""
    return zlib.crc32(student.encode()) % shards == shard


def prepare(course_root: Path | str, work: Work, force: bool) -> Work:
    """Create every student in the gradebook (workers would race to), return what to grade."""
    with open_gradebook(course_root) as gb:
        known = {a.name for a in gb.assignments}
        missing = sorted({a for a, _ in work} - known)
        if missing:
            raise SystemExit(f"Not in the gradebook: {missing}. Run `make release` first.")
        for student in sorted({s for _, s in work}):
            gb.update_or_create_student(student)
        todo = [(a, s) for a, s in work
                if force or not already_graded(course_root, gb, a, s)]
    return todo


def grade(course_root: Path | str, work: Work, workers: int | None,
          kernel_name: str | None, progress: bool = True) -> list[dict[str, Any]]:
    """Grade ``work`` with ``workers`` processes; one result dict per submission.

    A worker process that dies breaks its pool. Then what no worker had begun is graded
    again as usual, and what had begun is graded again alone, in a pool of its own: a
    submission that kills its worker there is the one reported, the others are graded.
    """
    results: list[dict[str, Any]] = []
    bar = tqdm(total=len(work), unit="nb", disable=not progress, file=sys.stderr)

    def record(result: dict[str, Any]) -> None:
        results.append(result)
        bar.update()

    runs: list[tuple[Work, int | None]] = [(list(work), workers)]
    while runs:
        todo, size = runs.pop(0)
        begun, not_begun = _grade_in_pool(course_root, todo, size, kernel_name, record)
        if len(todo) == 1 or len(not_begun) == len(todo):
            # It killed its worker alone, or no worker could begin: no retry would do better.
            for a, s in begun + not_begun:
                record({"assignment": a, "student": s, "success": False, "seconds": 0.0,
                        "error": ["the grading worker died"]})
            continue
        runs += [([submission], 1) for submission in begun]
        if not_begun:
            runs.append((not_begun, workers))
    bar.close()
    return sorted(results, key=lambda r: (r["assignment"], r["student"]))


def _grade_in_pool(course_root: Path | str, work: Work, workers: int | None,
                   kernel_name: str | None,
                   record: Callable[[dict[str, Any]], None]) -> tuple[Work, Work]:
    """Grade ``work`` in one process pool; what is left if the pool breaks, (begun, not)."""
    context = multiprocessing.get_context("spawn")
    started = context.SimpleQueue()  # a put is written at once: it survives its worker
    done: set[tuple[str, str]] = set()
    with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker,
            initargs=(str(course_root), kernel_name, started)) as pool:
        futures = {pool.submit(_grade, a, s): (a, s) for a, s in work}
        for future in concurrent.futures.as_completed(futures):
            if future.exception() is None:  # else BrokenProcessPool: _grade catches the rest
                record(future.result())
                done.add(futures[future])
    begun: set[tuple[str, str]] = set()
    while not started.empty():
        begun.add(started.get())
    left = [w for w in work if w not in done]
    return [w for w in left if w in begun], [w for w in left if w not in begun]


def summary(results: list[dict[str, Any]], skipped: Counter[str], elapsed: float) -> str:
    lines = [f"{'assignment':<28}{'graded':>8}{'failed':>8}{'skipped':>9}{'s/notebook':>12}"]
    for assignment in sorted({r["assignment"] for r in results} | set(skipped)):
        mine = [r for r in results if r["assignment"] == assignment]
        seconds = sum(r["seconds"] for r in mine) / len(mine) if mine else 0.0
        lines.append(f"{assignment:<28}{sum(r['success'] for r in mine):>8}"
                     f"{sum(not r['success'] for r in mine):>8}{skipped[assignment]:>9}"
                     f"{seconds:>12.2f}")
    for r in results:
        if not r["success"]:
            lines.append(f"FAILED {r['assignment']} {r['student']}: {r['error'][0]}")
    rate = len(results) / elapsed if elapsed else 0.0
    lines.append(f"{len(results)} notebooks graded in {elapsed:.1f} s ({rate:.2f}/s)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["report"]:
        # Here only: it loads pandas (0.4 s), which the workers, spawned by importing this
        # module, would each load for nothing.
        from convgrader.tools import class_status
        return class_status.main(argv[1:], prog="python -m convgrader.batch report")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="default: every submitted assignment")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--student", action="append", default=[],
                        help="grade only this student (repeatable)")
    parser.add_argument("--shard", default="0/1", metavar="K/N",
                        help="grade only students whose shard is K of N (zlib.crc32 of the "
                             "id); auto: K and N from a Slurm array or a Kubernetes Indexed Job")
    parser.add_argument("--force", action="store_true", help="grade again what is graded")
    kernels = parser.add_mutually_exclusive_group()
    kernels.add_argument("--cold", dest="kernel", action="store_const", const="python3",
                         help="fresh, unsandboxed kernels and the stock kernel client "
                              "(stock nbgrader's, one thread each; for benchmarks)")
    kernels.add_argument("--unsandboxed", dest="kernel", action="store_const",
                         const="convcourse-warm", help="warm kernels without the sandbox")
    parser.add_argument("--course", default=".", help="the course directory")
    args = parser.parse_args(argv)
    course_root = Path(args.course).resolve()
    try:
        shard, shards, where = parse_shard(args.shard)
    except NoShard as error:
        parser.error(str(error))
    work = [(a, s) for a, s in submissions(course_root, args.assignments, args.student)
            if in_shard(s, shard, shards)]
    todo = prepare(course_root, work, args.force)
    queued = set(todo)
    skipped = Counter(a for a, s in work if (a, s) not in queued)
    print(f"{where}: {len(work)} submissions, {len(todo)} to grade, "
          f"{len(work) - len(todo)} graded before", flush=True)
    start = time.monotonic()
    results = grade(course_root, todo, args.workers, args.kernel)
    for result in results:
        record_outcome(course_root, result)
    print(summary(results, skipped, time.monotonic() - start))
    return 0 if all(r["success"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
