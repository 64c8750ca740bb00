"""The state of a class's grading, read from the shared gradebook: after a cluster's job.

    convgrader status [ASSIGNMENT ...] [--course DIR]
    python -m convgrader.batch report [ASSIGNMENT ...] [--course DIR]     (the same)

Prints, for the submissions in ``submitted/``: one row per student with their score per
assignment (``-`` where nothing was submitted, ``FAILED`` or ``not graded`` where there is
no grade), a line per assignment with how many were graded, failed and not graded yet, and
every failed submission with its reason (``grading_failures/``, written by the batch
grader), and every submission ``nbgrader collect`` refused (``collect_refusals.csv``,
written by ``convgrader.collect.TrustedCollect``: another student's name, links, ...). The
gradebook is the course's (``CONVCOURSE_DB_URL`` or gradebook.db), read with nbgrader's own
``Gradebook`` (``convgrader.course``, which the batch grader keeps too). Exits 0 when every
submission is graded, 1 otherwise.
"""
import argparse
import sys
from collections import defaultdict
from collections.abc import Collection, Sequence
from pathlib import Path

import pandas as pd

from convgrader.collect import read_refusals
from convgrader.course import failure_reason, is_graded, open_gradebook, submissions


Submission = tuple[str, str]  # (assignment, student)


def read_class(course_root: Path | str, assignments: Collection[str] = ()
               ) -> tuple[dict[Submission, tuple[float, float] | None], dict[Submission, str]]:
    """{(assignment, student): (score, max_score) or None}, and {(assignment, student):
    failure reason}, for every submission in ``submitted/``."""
    work = submissions(course_root, assignments)
    scores: dict[Submission, tuple[float, float]] = {}
    with open_gradebook(course_root) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                if is_graded(submission):
                    scores[(assignment.name, submission.student.id)] = (
                        submission.score, submission.max_score)
    failures: dict[Submission, str] = {}
    for assignment, student in work:
        reason = failure_reason(course_root, assignment, student)
        if (assignment, student) not in scores and reason is not None:
            failures[(assignment, student)] = reason
    return {key: scores.get(key) for key in work}, failures


def class_table(graded: dict[Submission, tuple[float, float] | None],
                failures: dict[Submission, str]) -> pd.DataFrame:
    """Students x assignments: "score/max", "FAILED", "not graded" or "-"."""
    cells: defaultdict[str, dict[str, str]] = defaultdict(dict)
    for (assignment, student), score in graded.items():
        if score is not None:
            cells[student][assignment] = f"{score[0]:g}/{score[1]:g}"
        elif (assignment, student) in failures:
            cells[student][assignment] = "FAILED"
        else:
            cells[student][assignment] = "not graded"
    table = pd.DataFrame.from_dict(cells, orient="index").sort_index()
    return table[sorted(table.columns)].fillna("-")


def report(course_root: Path | str, assignments: Collection[str] = ()) -> tuple[str, bool]:
    """The report's text, and whether every submission is graded."""
    graded, failures = read_class(course_root, assignments)
    lines = []
    if graded:
        with pd.option_context("display.width", 200, "display.max_columns", None):
            lines.append(class_table(graded, failures).to_string())
    else:
        lines.append("No submissions in submitted/.")
    lines.append("")
    lines.append(f"{'assignment':<28}{'submitted':>10}{'graded':>8}{'failed':>8}"
                 f"{'not graded':>12}")
    for assignment in sorted({a for a, _ in graded}):
        mine = [k for k in graded if k[0] == assignment]
        done = sum(graded[k] is not None for k in mine)
        failed = sum(k in failures for k in mine)
        lines.append(f"{assignment:<28}{len(mine):>10}{done:>8}{failed:>8}"
                     f"{len(mine) - done - failed:>12}")
    for (assignment, student), reason in sorted(failures.items()):
        lines.append(f"FAILED {assignment} {student}: {reason}")
    lines += refused_at_collect(course_root, assignments)
    complete = all(score is not None for score in graded.values())
    return "\n".join(lines), complete


def refused_at_collect(course_root: Path | str, assignments: Collection[str] = ()) -> list[str]:
    """One line per inbound entry that the last collect of each assignment refused: the
    student it was refused for is graded on their latest accepted submission, if any."""
    return [f"REFUSED at collect {r['assignment']} {r['entry']} (owned by {r['owner']}, "
            f"named for {r['named']}): {r['reason']}"
            for r in read_refusals(course_root)
            if not assignments or r["assignment"] in assignments]


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``prog``: the command line the usage names (argparse's default: the script's name)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="default: every submitted assignment")
    parser.add_argument("--course", default=".", help="the course directory")
    args = parser.parse_args(argv)
    text, complete = report(Path(args.course).resolve(), args.assignments)
    print(text)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
