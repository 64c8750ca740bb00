"""The instructor report: how a class did, per notebook and per test cell, from the gradebook.

    convgrader report [--db-url URL] [--out reports]

writes ``scores.csv`` (one row per student and notebook), ``test_cells.csv`` (one row per
test cell: submissions, failures, failure rate, mean points) and ``report.png`` (the score
distribution per notebook, and the failure rate of every test cell).
"""
import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import pandas as pd  # noqa: E402
from nbgrader.api import Gradebook  # noqa: E402

from convgrader.tools import COURSE_ROOT  # noqa: E402


def gradebook_frames(db_url: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores, cells): one row per submitted notebook, one row per graded test cell."""
    scores: list[dict[str, object]] = []
    cells: list[dict[str, object]] = []
    with Gradebook(db_url) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    scores.append({"student": submission.student.id,
                                   "assignment": assignment.name, "notebook": notebook.name,
                                   "score": notebook.score, "max_score": notebook.max_score})
                    for grade in notebook.grades:
                        cells.append({"assignment": assignment.name, "test_cell": grade.name,
                                      "student": submission.student.id,
                                      "points": grade.score, "max_points": grade.max_score})
    return pd.DataFrame(scores), pd.DataFrame(cells)


def test_cell_summary(cells: pd.DataFrame) -> pd.DataFrame:
    cells = cells.assign(failed=cells["points"] < cells["max_points"])
    summary = cells.groupby(["assignment", "test_cell"], sort=True).agg(
        max_points=("max_points", "first"), submissions=("student", "count"),
        failed=("failed", "sum"), mean_points=("points", "mean")).reset_index()
    summary["failure_rate"] = summary["failed"] / summary["submissions"]
    return summary


def draw(scores: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """Left: a histogram of scores per notebook; right: the failure rate of every test cell."""
    assignments = sorted(scores["assignment"].unique())
    height = max(1.6 * len(assignments), 0.3 * len(summary) + 1.5, 4.0)
    fig = plt.figure(figsize=(13, height))
    grid = fig.add_gridspec(len(assignments), 2, width_ratios=[1, 1.4])
    for row, assignment in enumerate(assignments):
        ax = fig.add_subplot(grid[row, 0])
        done = scores[scores["assignment"] == assignment]
        max_score = done["max_score"].max()
        counts = done["score"].round(2).value_counts().sort_index()
        ax.bar(counts.index, counts.values, width=0.15 * max(max_score, 1), color="#2a9d8f")
        ax.set_xlim(-0.5, max_score + 0.5)
        # Points are whole numbers here: ticks at 0, 1, 2, 3, not at -0.5, 0.5, 1.5.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("students")
        ax.set_title(f"{assignment}: scores out of {max_score:g} "
                     f"(mean {done['score'].mean():.2f}, n={len(done)})", fontsize=9, loc="left")
    ax.set_xlabel("score (points)")

    right = fig.add_subplot(grid[:, 1])
    labels = [f"{a[:2]} {t.removeprefix('test_')}"
              for a, t in zip(summary["assignment"], summary["test_cell"])]
    rates = 100 * summary["failure_rate"]
    right.barh(range(len(summary)), rates, color="#e76f51")
    for y, (rate, failed, n) in enumerate(zip(rates, summary["failed"], summary["submissions"])):
        right.text(min(rate + 1, 88), y, f"{failed}/{n}", va="center", fontsize=8)
    right.set_yticks(range(len(summary)), labels, fontsize=8)
    right.invert_yaxis()
    right.set_xlim(0, 100)
    right.set_xlabel("submissions failing this test cell (%)")
    right.set_title("Failure rate per test cell")
    fig.tight_layout()
    return fig


def write_report(db_url: str, out_dir: Path | str) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores, cells = gradebook_frames(db_url)
    if scores.empty:
        raise SystemExit("The gradebook holds no graded submission: run `make autograde` first.")
    summary = test_cell_summary(cells)
    scores.sort_values(["assignment", "student"]).to_csv(out_dir / "scores.csv", index=False)
    summary.to_csv(out_dir / "test_cells.csv", index=False, float_format="%.3f")
    fig = draw(scores, summary)
    fig.savefig(out_dir / "report.png", dpi=110)
    plt.close(fig)
    return [out_dir / name for name in ("report.png", "scores.csv", "test_cells.csv")]


def main(argv: Sequence[str] | None = None) -> int:
    root = COURSE_ROOT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get(
        "CONVCOURSE_DB_URL", f"sqlite:///{root / 'gradebook.db'}"))
    parser.add_argument("--out", default=str(root / "reports"))
    args = parser.parse_args(argv)
    for path in write_report(args.db_url, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
