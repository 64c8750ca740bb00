"""Shared code of the course "Convolutional networks: the basics".

What a student's notebook imports:
- ``convcourse.checks``: readable checks used by the notebooks' test cells.
- ``convcourse.drawing``: matplotlib pictures of grids, windows, padding and strides.

What grading runs inside the student's kernel:
- ``convcourse.calls``: calls a student's function for the grader and reports the result.

What only the grader runs:
- ``convcourse.grading``: nbgrader preprocessors that make grades hold (execution, caps).
- ``convcourse.judge``: test cells run in the grader, calling the functions in the kernel.
- ``convcourse.submissions``: submission folders and notebooks checked before any copy.
- ``convcourse.sanitize``, ``convcourse.feedback``: no active content, hidden tests cleared.
- ``convcourse.warm``, ``convcourse.sandbox``, ``convcourse.fs``: warm kernels in a sandbox.
- ``convcourse.batch``: grading a class with N workers.

Tools: ``convcourse.notebooks`` (nbgrader cells), ``convcourse.sample_class`` (the bundled
sample class), ``convcourse.report``, ``convcourse.benchmark``, ``convcourse.pipeline``.
"""
