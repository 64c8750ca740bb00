"""The course's grader: what only instructors run. It is never in the student kit.

What grading runs inside the student's kernel:
- ``convgrader.calls``: calls a student's function for the grader and reports the result.

What the grader runs:
- ``convgrader.grading``: nbgrader preprocessors that make grades hold (execution, caps).
- ``convgrader.judge``: test cells run in the grader, calling the functions in the kernel.
- ``convgrader.submissions``: submission folders and notebooks checked before any copy.
- ``convgrader.sanitize``, ``convgrader.feedback``: no active content, hidden tests cleared.
- ``convgrader.pages``, ``convgrader.mathml``: pages made from notebooks pass nh3 last;
  feedback pages' formulas as MathML.
- ``convgrader.warm``, ``convgrader.sandbox``, ``convgrader.limits``, ``convgrader.fs``:
  warm kernels in a sandbox, and its limits.
- ``convgrader.batch``: grading a class with N workers.

- ``convgrader.course``: the course's bookkeeping (configuration, submissions, what is graded,
  failure files), read by the batch grader and the tools alike.

Tools (``convgrader.tools``): the class status, the instructor report, the grade table, the
benchmark, the sample class and the student kit; ``convgrader.notebooks`` (nbgrader cells).
One command line runs them all, and the batch grader: ``convgrader`` (``convgrader.cli``).
"""
