"""The instructor's tools around the grader, each one a subcommand of ``convgrader``.

- ``class_status``: the state of a class's grading, from the shared gradebook (``status``).
- ``class_report``: the instructor report, scores and test cells, CSV and PNG (``report``).
- ``grade_table``: the grade table of an ``nbgrader export`` CSV (``grade-table``).
- ``benchmark``: stock nbgrader against the batch grader, on a class built for it.
- ``sample_class``: the bundled sample class's submissions, built from the release.
- ``kit``: the student kit.

They sit on top of the grader: the grader (``convgrader.batch`` and what it runs) never
imports them, but for the class status that ``python -m convgrader.batch report`` prints.
"""
from pathlib import Path

# The course checkout these tools work in by default: convgrader/tools/ is two folders down.
COURSE_ROOT = Path(__file__).resolve().parents[2]
