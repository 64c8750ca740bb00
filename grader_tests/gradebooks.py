"""The sample class's grades as rows, ``{(assignment, student): {grade id: points}}``: as
expected.toml gives them (expected_rows, honest_rows) and as a gradebook holds them
(gradebook_rows), and a class cut down to some rows (keep_only). test_batch, test_slurm and
slurm_cluster.py's benchmark compare graders by them."""
import shutil

from nbgrader.api import Gradebook

from convgrader.tools import sample_class
from course_copies import ASSIGNMENTS, SAMPLE_CLASS


def expected_rows():
    """Every sample submission's points, as its expected.toml gives them."""
    return {(a, s): points for a in ASSIGNMENTS
            for s, points in sample_class.expected_scores(SAMPLE_CLASS, a).items()}


def gradebook_rows(db_url):
    """The points the gradebook at ``db_url`` holds; no submission in it twice (asserted)."""
    rows = {}
    with Gradebook(db_url) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    key = (assignment.name, submission.student.id)
                    assert key not in rows, f"{key} is in the gradebook twice"
                    rows[key] = {g.name: g.score for g in notebook.grades}
    return rows


def honest_rows(assignments=ASSIGNMENTS):
    """The expected rows of ``assignments``, without the attacks' submissions."""
    return {k: v for k, v in expected_rows().items()
            if k[0] in assignments and not k[1].startswith("attack_")}


def keep_only(submitted, rows):
    """Remove from ``submitted`` every submission that is not one of ``rows``."""
    for folder in submitted.glob("*/*"):
        if (folder.name, folder.parent.name) not in rows:
            shutil.rmtree(folder)
