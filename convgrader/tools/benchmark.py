"""Benchmark: stock `nbgrader autograde` against the course's batch grader, same class.

    convgrader benchmark --students N [--workers W] [--out bench] [--as-user NAME]

Builds a class of N students from the sample class (honest and mistaken submissions; the
attacks, which mostly wait for timeouts, are left out), in two copies of the course. One
is graded by stock `nbgrader autograde`, one assignment after the other; the other by the
batch grader with W workers, cold (fresh kernels: what workers alone give), warm (forked
kernels, no sandbox) and sandboxed (warm kernels in the sandbox: the course's default). It
checks that all four runs give identical grades, and prints and writes (``results.json``,
``benchmark.png``) notebooks per second, speed-ups, the cost per notebook against the floor
(a fresh `import torch; from d2l import torch`, measured in the same run) and the peak
memory of each run's process tree. With ``--as-user NAME`` (run as root), the sandboxed run
is made once more by that ordinary user, whose sandbox has the limits such a user gets
(``convgrader.kernels.limits``): the sandbox's cost for each.
"""
import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import nbformat
import psutil
from nbgrader.api import Gradebook

from convgrader.notebooks import read
from convgrader.kernels.clients import STOCK_CLIENT
from convgrader.tools import COURSE_ROOT, sample_class

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

SAMPLE_CLASS = COURSE_ROOT / "grader_tests" / "sample_class"


def build_course(directory: Path, students: int) -> list[str]:
    """A course copy with release/ generated and ``students`` submissions per assignment."""
    directory.mkdir(parents=True)
    shutil.copy(COURSE_ROOT / "nbgrader_config.py", directory)
    shutil.copytree(COURSE_ROOT / "source", directory / "source")
    assignments = sample_class.assignments(SAMPLE_CLASS)
    for assignment in assignments:
        run(directory, "-m", "nbgrader", "generate_assignment", assignment)
    for assignment in assignments:
        release = sample_class.notebook_path(directory / "release", assignment)
        nb = read(release)
        models = [s for s in sample_class.students(SAMPLE_CLASS, assignment)
                  if not s.startswith("attack_")]
        for i in range(students):
            model = models[i % len(models)]
            edits = sample_class.load_answers(SAMPLE_CLASS / assignment / f"{model}.py")
            out = directory / "submitted" / f"student{i:04d}" / assignment / release.name
            out.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(sample_class.fill(nb, edits), str(out))
    return assignments


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("CONVCOURSE_DB_URL", None)
    return env


def run(course: Path, *args: str, user: str | None = None) -> None:
    command, env = [sys.executable, *args], environment()
    if user is not None:  # an ordinary user's run, in their own clean environment
        entry = pwd.getpwnam(user)
        command = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                   "--init-groups", "--", *command]
        env = {"HOME": entry.pw_dir, "USER": user, "LANG": "C.UTF-8",
               "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    subprocess.run(command, cwd=course, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class PeakMemory:
    """Samples the summed RSS of this process's children and their descendants."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def __enter__(self) -> "PeakMemory":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(self.interval):
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(course: Path, commands: list[list[str]], user: str | None = None) -> tuple[float, int]:
    with PeakMemory() as memory:
        start = time.monotonic()
        for command in commands:
            run(course, *command, user=user)
        seconds = time.monotonic() - start
    return seconds, memory.peak


def floor_seconds(repeats: int = 3) -> float:
    """Wall time of a fresh `import torch; from d2l import torch`, best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.monotonic()
        subprocess.run([sys.executable, "-c", "import torch; from d2l import torch"], check=True)
        best = min(best, time.monotonic() - start)
    return best


def grades(course: Path) -> dict[str, dict[str, float | None]]:
    rows = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    rows[f"{assignment.name}/{submission.student.id}"] = {
                        g.name: g.score for g in notebook.grades}
    return rows


COLORS = ["#adb5bd", "#8ecae6", "#219ebc", "#023047", "#fb8500"]


def draw(results: dict[str, Any], path: Path) -> None:
    names = list(results["runs"])
    rates = [results["runs"][n]["notebooks_per_second"] for n in names]
    memory = [results["runs"][n]["peak_memory_mb"] for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    bars = left.bar(names, rates, color=COLORS[:len(names)])
    left.bar_label(bars, [f"{r:.2f}/s\n×{r / rates[0]:.1f}" for r in rates])
    left.set_ylabel("notebooks graded per second")
    left.set_ylim(0, max(rates) * 1.3)
    left.set_title(f"{results['notebooks']} notebooks, {results['workers']} workers, "
                   f"{os.cpu_count()} cores")
    bars = right.bar(names, memory, color=COLORS[:len(names)])
    right.bar_label(bars, [f"{m:.0f} MB" for m in memory])
    right.set_ylabel("peak memory of the run (MB)")
    right.set_ylim(0, max(memory) * 1.25)
    right.set_title("Peak memory (all processes of the run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--out", default=str(COURSE_ROOT / "bench"))
    parser.add_argument("--as-user", metavar="NAME",
                        help="also grade sandboxed as this ordinary user (run as root)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="convcourse-bench-"))
    try:
        names = ["stock", "workers", "warm", "sandboxed"] + (["user"] if args.as_user else [])
        courses = {name: work / name for name in names}
        for name, course in courses.items():
            assignments = build_course(course, args.students)
        if args.as_user:
            os.chmod(work, 0o711)  # the user reaches their copy, and nothing else of ours
            shutil.chown(courses["user"], args.as_user, args.as_user)
            for folder, folders, files in os.walk(courses["user"]):
                for name in folders + files:
                    shutil.chown(os.path.join(folder, name), args.as_user, args.as_user)
        notebooks = args.students * len(assignments)
        batch = ["-m", "convgrader.batch", "--workers", str(args.workers)]
        # The notebook's own kernel, no sandbox, jupyter_client's own kernel client.
        stock = ["--Execute.kernel_name=python3",
                 f"--AsyncKernelManager.client_class={STOCK_CLIENT}"]
        plans = {"stock": [["-m", "nbgrader", "autograde", a, *stock] for a in assignments],
                 "workers": [batch + ["--cold"]],
                 "warm": [batch + ["--unsandboxed"]],
                 "sandboxed": [batch]}
        if args.as_user:
            plans["user"] = [batch]
        runs = {}
        for name, commands in plans.items():
            seconds, peak = timed(courses[name], commands,
                                  user=args.as_user if name == "user" else None)
            runs[name] = {"seconds": round(seconds, 2),
                          "notebooks_per_second": round(notebooks / seconds, 3),
                          "seconds_per_notebook_per_worker": round(
                              seconds * (1 if name == "stock" else args.workers) / notebooks, 3),
                          "peak_memory_mb": round(peak / 2**20)}
            print(f"{name:>8}: {seconds:7.1f} s  {notebooks / seconds:6.2f} notebooks/s  "
                  f"peak {peak / 2**20:6.0f} MB", flush=True)
        reference = grades(courses["stock"])
        identical = all(grades(courses[n]) == reference for n in runs if n != "stock")
        floor = floor_seconds()
        results = {
            "students": args.students, "notebooks": notebooks, "workers": args.workers,
            "cores": os.cpu_count(), "grades_identical": identical,
            "floor_import_seconds": round(floor, 2), "runs": runs,
            "speedup_workers_alone": round(
                runs["stock"]["seconds"] / runs["workers"]["seconds"], 2),
            "speedup_warm": round(runs["stock"]["seconds"] / runs["warm"]["seconds"], 2),
            "speedup_sandboxed": round(runs["stock"]["seconds"] / runs["sandboxed"]["seconds"], 2),
            "sandbox_overhead_seconds_per_notebook_per_worker": round(
                runs["sandboxed"]["seconds_per_notebook_per_worker"]
                - runs["warm"]["seconds_per_notebook_per_worker"], 3),
            "stock_seconds_per_notebook_over_floor": round(
                runs["stock"]["seconds"] / notebooks / floor, 2),
            "projected_minutes_200_students": round(
                200 * len(assignments) / runs["sandboxed"]["notebooks_per_second"] / 60, 1),
        }
        if args.as_user:
            results["as_user"] = args.as_user
            results["sandbox_overhead_seconds_per_notebook_per_worker_as_user"] = round(
                runs["user"]["seconds_per_notebook_per_worker"]
                - runs["warm"]["seconds_per_notebook_per_worker"], 3)
        (out / "results.json").write_text(json.dumps(results, indent=1))
        draw(results, out / "benchmark.png")
        print(f"grades identical: {identical}")
        print(f"floor (fresh `import torch; from d2l import torch`): {floor:.2f} s; stock costs "
              f"{results['stock_seconds_per_notebook_over_floor']}× that per notebook")
        print(f"speed-up, workers alone: ×{results['speedup_workers_alone']}; "
              f"warm kernels: ×{results['speedup_warm']}; sandboxed warm kernels (the default): "
              f"×{results['speedup_sandboxed']}")
        overhead = f"{results['sandbox_overhead_seconds_per_notebook_per_worker']:+.2f} s"
        if args.as_user:
            overhead += (" as root; " + format(
                results["sandbox_overhead_seconds_per_notebook_per_worker_as_user"], "+.2f")
                + f" s as the ordinary user {args.as_user}")
        print(f"sandbox overhead per notebook per worker: {overhead}")
        print(f"200 students × {len(assignments)} notebooks at this run's rate with the default "
              f"grader: {results['projected_minutes_200_students']} min (an upper bound: each "
              "worker's start-up, counted here once per "
              f"{args.students} students, comes once per run)")
        print(f"wrote {out / 'results.json'} and {out / 'benchmark.png'}")
        return 0 if identical else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
