"""What a student's notebook imports, in the course "Convolutional networks: the basics".

- ``convcourse.checks``: readable checks used by the notebooks' test cells.
- ``convcourse.drawing``: matplotlib pictures of grids, windows, padding and strides.
- ``convcourse.exchange``: the student's side of nbgrader's exchange (a private submit);
  imported by nbgrader only, when the machine's nbgrader_config.py selects it.

This package is all of the course's code that the student kit ships (``make kit``). It
imports nothing of the grader (``convgrader``), which imports it.
"""
