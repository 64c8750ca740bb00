"""Shared code of the course "Convolutional networks: the basics".

- ``convcourse.checks``: readable checks used by the notebooks' test cells.
- ``convcourse.drawing``: matplotlib pictures of grids, windows, padding and strides.
- ``convcourse.notebooks``: reading nbgrader cells of a notebook.
- ``convcourse.sample_class``: building the bundled sample class of submissions.
- ``convcourse.pipeline``: the instructor pipeline (``python -m convcourse demo``).
"""
