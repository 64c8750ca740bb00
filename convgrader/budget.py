"""The time one notebook's grading may take: per cell, for the whole notebook, and the grace
a kernel has to answer again after a time limit's interrupt.

``GuardedExecute`` (``convgrader.grading``) makes one per notebook and gives nbclient each
cell's limit through nbclient's own hook (``timeout_func``); the judge of the test cells
(``convgrader.judge``) takes its calls' deadlines from the same object.
"""
from time import monotonic

from nbformat import NotebookNode


class TimeBudget:
    """Seconds per cell (``cell``; None: no limit but the notebook's), for the notebook
    (from now on), and the ``grace`` after an interrupt."""

    # A test cell's calls get this long when no cell limit is configured.
    DEFAULT_CELL = 60

    def __init__(self, cell: float | None, notebook: float, grace: float) -> None:
        self.cell, self.notebook, self.grace = cell, notebook, grace
        self.deadline = monotonic() + notebook
        self.last_cell_limit = cell

    def left(self) -> float:
        """Seconds until the notebook's deadline (0 or less once it has passed)."""
        return self.deadline - monotonic()

    def cell_limit(self, cell: NotebookNode | None = None) -> float:
        """The limit of the cell about to run: the cell limit, but never past the notebook's
        deadline, and at least a second. nbclient's ``timeout_func`` (given the cell)."""
        left = self.left()
        self.last_cell_limit = max(1, min(self.cell or left, int(left) + 1))
        return self.last_cell_limit

    def part_deadline(self) -> float:
        """When the calls of one part of a test cell must have finished (monotonic time)."""
        return min(monotonic() + (self.cell or self.DEFAULT_CELL), self.deadline)

    def grace_deadline(self) -> float:
        """When a kernel interrupted now must have answered (monotonic time)."""
        return monotonic() + self.grace
