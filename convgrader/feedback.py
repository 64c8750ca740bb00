"""Feedback that removes hidden tests only where the instructor put them.

nbgrader's ``ClearHiddenTests`` looks for ``### BEGIN HIDDEN TESTS`` in every cell of an
autograded notebook, the student's answers included: an answer holding that comment
without its END (or any such region outside a test cell) makes ``generate_feedback`` fail
for that student. ``ClearKnownHiddenTests`` clears hidden tests only in the test cells the
gradebook knows (their source in autograded/ is the instructor's, put back by autograde);
a student's own cells are shown as written. nbgrader_config.py puts it in
``c.GenerateFeedback.preprocessors`` in place of nbgrader's.
"""
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearHiddenTests


class ClearKnownHiddenTests(ClearHiddenTests):
    """``ClearHiddenTests`` on the gradebook's test cells only."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            solutions = {c.name for c in notebook.solution_cells}
            self._tests = {c.name for c in notebook.grade_cells} - solutions
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        if utils.is_grade(cell) and cell.metadata.nbgrader.get("grade_id") in self._tests:
            return super().preprocess_cell(cell, resources, cell_index)
        return cell, resources
