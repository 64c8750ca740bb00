"""The grade table of a class: students x assignments, from ``nbgrader export``'s CSV.

    convgrader grade-table grades.csv
"""
import argparse
import sys
from pathlib import Path

import pandas as pd


def grade_table(csv_path: Path | str) -> pd.DataFrame:
    """Students x assignments, each cell "score/max", from ``nbgrader export``'s CSV."""
    grades = pd.read_csv(csv_path)
    grades = grades[grades["student_id"].notna()]
    cell = grades.apply(lambda r: f"{r['score']:g}/{r['max_score']:g}", axis=1)
    table = grades.assign(cell=cell).pivot_table(
        index="student_id", columns="assignment", values="cell", aggfunc="first", fill_value="-")
    totals = grades.groupby("student_id")[["score", "max_score"]].sum()
    table["total"] = [f"{totals.loc[s, 'score']:g}/{totals.loc[s, 'max_score']:g}"
                      for s in table.index]
    table.columns.name = None
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", help="the CSV `nbgrader export` wrote (grades.csv)")
    args = parser.parse_args(argv)
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(grade_table(args.csv).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
