"""The course's grader: what only instructors run. It is never in the student kit.

README's "Architecture" draws the rooms; import-linter holds their boundaries (make check).

The grader's kernels (``convgrader.kernels``), by where their code runs:
- ``kernels.inside``: inside the sandbox, beside the student's code: the fork server, a kernel
  becoming itself, the reset between two kernels, the calls of a student's function;
- ``kernels.protocol``: what the grader and the fork server say to each other;
- the grader's side: the fork server's client and provisioners, the sandbox (bubblewrap) and
  its limits, the kernel clients, the kernelspecs.

nbgrader's steps, made to hold against broken or hostile submissions:
- ``convgrader.submissions``: submission folders and notebooks checked before any copy;
  ``convgrader.collect`` and ``convgrader.inbound``: nbgrader collect trusting the OS only;
- ``convgrader.grading``: nbgrader preprocessors (roles, execution, output budgets) with
  ``convgrader.outputs``, ``convgrader.budget`` (time limits) and ``convgrader.judge`` (test
  cells run in the grader, calling the student's functions in the kernel);
- ``convgrader.sanitize``, ``convgrader.feedback``, ``convgrader.pages``, ``convgrader.mathml``:
  no active content, hidden tests cleared, every page through nh3 last;
- ``convgrader.exchange``, ``convgrader.hub``: the exchange on one machine, the JupyterHub.

Grading a class: ``convgrader.batch`` (N workers) and ``convgrader.course`` (the course's
bookkeeping: configuration, submissions, what is graded, failure files).

Tools (``convgrader.tools``): the class status, the instructor report, the grade table, the
benchmark, the sample class and the student kit; ``convgrader.notebooks`` (nbgrader cells).
One command line runs them all, and the batch grader: ``convgrader`` (``convgrader.cli``).
Errors the person running the grader must act on: ``convgrader.errors``.
"""
