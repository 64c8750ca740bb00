"""What runs inside the grading sandbox (or beside the grader, for unsandboxed warm kernels):
the fork server (``server``), each kernel becoming itself (``kernel``), the reset between two
kernels (``reset``), and what a kernel runs when the grader calls a student's function
(``calls``).

Nothing here imports the grader's side (``convgrader.kernels`` outside this package, the
preprocessors, the batch grader): this code runs with the student's code beside it, and
needs nothing of the grader's but the protocol (``convgrader.kernels.protocol``), the file
tree tools (``convgrader.fs``) and the records a kernel sends (``convcourse.records``).
import-linter checks it (``make check``).
"""
