"""Submission folders and notebooks, checked before nbgrader copies or reads them.

nbgrader's autograde copies ``submitted/<student>/<assignment>/`` into ``autograded/`` with
the grader's rights, outside the sandbox, following symbolic links (``shutil.copy``), and
reads the notebook through its path (``Exporter.from_filename``): a link to the gradebook
or to ``source/`` lands in the graded folder, a notebook that is a link to the solution
earns its points, a link to ``/dev/zero`` fills the disk. A malformed notebook stops with
an error that does not say what is wrong with it, and a cell whose nbgrader metadata has an
unknown schema version stops the grading of every later student.

Where nbgrader copies a submission: ``BaseConverter.convert_notebooks`` calls, for each
submission, ``init_destination`` (removes an old graded copy with --force), the
``pre_convert_hook``, then ``Autograde.init_assignment``, whose first step,
``BaseConverter.init_assignment``, copies every file but the notebooks; each notebook is
then read by ``convert_single_notebook``. nbgrader has no hook that can refuse a submission
there: ``pre_convert_hook`` runs before the copy but is given the command's assignment and
student *patterns*, and its exceptions are logged at INFO and ignored. The converter class
is not configurable either: ``AutogradeApp.start`` and ``NbGraderAPI.autograde`` build
``Autograde(...)`` from their modules' globals. So nbgrader_config.py calls
``use_checked_autograde()``, which points those two names at ``CheckedAutograde``, a
subclass of nbgrader's ``Autograde`` that

- checks each submission in ``init_destination``, before anything is copied or removed:
  without following any link (``lstat``, and ``openat`` with ``O_NOFOLLOW`` from the
  submitted/ folder down), it refuses links (to files or folders, anywhere in the tree,
  the student's or the assignment's folder itself too), devices, FIFOs and sockets,
  folders over ``SubmissionLimits`` (bytes, entries, depth), and malformed notebooks (not
  JSON, not a notebook, not format 4, cells without their keys, no cells, a graded cell
  twice, nbgrader metadata of another schema version, the notebook missing or renamed);
- copies the other files and reads the notebook itself, through the same file descriptors,
  so a folder changed between the check and the copy is refused again, never followed
  (nbgrader's two reads, in a class between ``Autograde`` and ``BaseConverter``);
- turns nbgrader's schema-version errors, which stop the whole run, into that student's
  failure.

A refused submission is logged as one line, ``<student>/<assignment>: <reason>``; nbgrader
then counts it as failed (its graded copy removed, exit status 1) and grades the others.
The batch grader (``convgrader.batch``) grades through the same class.

The package, one job a module, each importing only those above it:

- ``folders``: a folder walked without following any link, ``SubmissionLimits``,
  ``SubmissionRefused`` and its one line (shared with ``convgrader.collect``);
- ``notebooks``: a submission's notebooks checked as nbgrader would read them;
- ``autograde``: ``CheckedAutograde`` and ``use_checked_autograde``.

The names configuration and the other modules use are here too: nbgrader_config.py calls
``convgrader.submissions.use_checked_autograde()`` and configures ``c.SubmissionLimits``.
"""
from convgrader.submissions.autograde import (CheckedAutograde, refusal_in_log,
                                              served_safely, use_checked_autograde)
from convgrader.submissions.folders import (SubmissionLimits, SubmissionRefused, open_submission,
                                            refusal_line, show, walk)
from convgrader.submissions.notebooks import (NotebookCells, check_folder, check_notebook,
                                              gradebook_notebooks, read_notebook)

__all__ = ["CheckedAutograde", "NotebookCells", "SubmissionLimits", "SubmissionRefused",
           "check_folder", "check_notebook", "gradebook_notebooks", "open_submission",
           "read_notebook", "refusal_in_log", "refusal_line", "served_safely", "show",
           "use_checked_autograde", "walk"]
