"""nbgrader's autograde, checked: ``CheckedAutograde`` and ``use_checked_autograde``.

nbgrader has no hook that can refuse a submission before it copies it, and its converter
class is not configurable (the package's docstring, ``convgrader.submissions``, says where
nbgrader copies and why): ``use_checked_autograde`` points nbgrader's autograde app and API
at ``CheckedAutograde``, which checks each folder (``notebooks.check_folder``) before
anything is copied or removed, copies the other files and reads the notebooks itself
through file descriptors opened without following links (``_CheckedReads``), and turns
nbgrader's schema-version errors, which stop the whole run, into that student's failure.
"""
import datetime
import glob
import mimetypes
import os
import stat
from types import TracebackType
from typing import Literal

from nbgrader.converters import Autograde
from nbgrader.converters.base import BaseConverter, NbGraderException
from nbgrader.nbgraderformat.common import SchemaMismatchError
from traitlets import Instance, default

from convgrader.submissions.folders import (SubmissionLimits, SubmissionRefused, matches,
                                            open_submission, reading, refusal_line, show, walk)
from convgrader.submissions.notebooks import (NotebookCells, check_folder, gradebook_notebooks,
                                              read_notebook)

# The formgrader serves every file of a graded folder to the grader's browser, with the
# instructor's login (nbgrader's SubmissionFilesHandler, a tornado StaticFileHandler, which
# takes the type from the name): a student's page.html or drawing.svg would run there. A
# submission's other files are copied into autograded/ only when that type is one a browser
# shows as text or an image, or downloads.
SERVED_SAFELY = {"text/plain", "text/csv", "text/markdown", "text/x-python", "application/json",
                 "application/octet-stream", "image/png", "image/jpeg", "image/gif", None}


def served_safely(name: str) -> bool:
    """Whether the formgrader would serve a file of this name as a type that runs nothing:
    the types above, and vendors' binary types (``.pt`` is a SNES page table to
    /etc/mime.types), which a browser downloads, but for any XML or script."""
    kind, encoding = mimetypes.guess_type(name)
    if encoding:  # compressed: tornado says application/gzip, or bytes
        return True
    return kind in SERVED_SAFELY or (
        kind is not None and kind.startswith(("application/vnd.", "application/x-"))
        and "xml" not in kind and "script" not in kind)


class _CheckedReads(BaseConverter):
    """``BaseConverter``'s copy of a submission's files and read of its notebooks, made
    through file descriptors opened without following links. ``CheckedAutograde`` puts it
    between ``Autograde`` and ``BaseConverter``, so ``Autograde``'s own calls of
    ``super().init_assignment`` and ``super().convert_single_notebook`` come here."""

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        if not self._sanitizing:
            return super().init_assignment(assignment_id, student_id)
        source = self._format_source(assignment_id, student_id)
        dest = self._format_dest(assignment_id, student_id)
        with self._refusing(assignment_id, student_id), reading():
            fd = open_submission(self._submitted_root(), student_id, assignment_id)
            try:
                files = walk(fd, self.limits, list(self.coursedir.ignore) + ["*.ipynb"])
            finally:
                os.close(fd)
        for rel, data, mode in files:
            if not served_safely(rel):
                self.log.warning(
                    "%s%s is not copied into the graded folder: the formgrader would serve "
                    "it as %s, which a browser runs", refusal_line(student_id, assignment_id, ""),
                    show(rel), mimetypes.guess_type(rel)[0])
                continue
            path = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.lexists(path):
                os.remove(path)
            self.log.info("Copying %s -> %s", os.path.join(source, rel), path)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, stat.S_IMODE(mode) & 0o777)

    def convert_single_notebook(self, notebook_filename: str) -> None:
        if not self._sanitizing:
            return super().convert_single_notebook(notebook_filename)
        self.log.info("Converting notebook %s", notebook_filename)
        resources = self.init_single_notebook_resources(notebook_filename)
        info = resources["nbgrader"]
        filename = os.path.basename(notebook_filename)
        with self._refusing(info["assignment"], info["student"]), reading():
            fd = open_submission(self._submitted_root(), info["student"], info["assignment"])
            try:
                nb = read_notebook(fd, filename, self.limits, self._notebooks)
                mtime = os.stat(filename, dir_fd=fd, follow_symlinks=False).st_mtime
            finally:
                os.close(fd)
        # What nbconvert's Exporter.from_filename puts in the resources.
        meta = resources.setdefault("metadata", {})
        meta["name"] = os.path.splitext(filename)[0]
        meta["path"] = os.path.dirname(notebook_filename)
        meta["modified_date"] = datetime.datetime.fromtimestamp(
            mtime, tz=datetime.timezone.utc).strftime("%B %-d, %Y")
        output, resources = self.exporter.from_notebook_node(nb, resources=resources)
        self.write_single_notebook(output, resources)


class CheckedAutograde(Autograde, _CheckedReads):
    """nbgrader's ``Autograde``, refusing submissions it should not copy or cannot grade."""

    limits = Instance(SubmissionLimits)
    # The gradebook's notebooks of the submission being graded.
    _notebooks: dict[str, NotebookCells] | None = None

    @default("limits")
    def _limits_default(self) -> SubmissionLimits:
        return SubmissionLimits(parent=self)

    def _submitted_root(self) -> str:
        return os.path.join(self.coursedir.root, self.coursedir.submitted_directory)

    def _refusing(self, assignment_id: str, student_id: str) -> "_LogRefusal":
        return _LogRefusal(self, assignment_id, student_id)

    def init_notebooks(self) -> None:
        """nbgrader's, plus the submission folders it would skip in silence or follow: one
        without a notebook, and a student's entry that is a link or no folder at all."""
        missing = None  # nbgrader raises it only when no notebook matched at all
        try:
            super().init_notebooks()
        except NbGraderException as error:
            missing = error
        for folder in self._submission_folders():
            self.assignments.setdefault(folder, [])
        if not self.assignments and missing is not None:
            raise missing

    def _submission_folders(self) -> set[str]:
        pattern = self._format_source(self.coursedir.assignment_id, self.coursedir.student_id)
        folders = set(glob.glob(pattern))
        layout = os.path.join("{nbgrader_step}", "{student_id}", "{assignment_id}")
        assignment = self.coursedir.assignment_id
        if self.coursedir.directory_structure != layout or glob.has_magic(assignment):
            return folders
        root = self._submitted_root()
        try:
            entries = list(os.scandir(root))
        except OSError:
            return folders
        for entry in entries:  # a link or a special file where a student's folder should be
            if matches(entry.name, self.coursedir.student_id) and (
                    entry.is_symlink() or not (entry.is_dir(follow_symlinks=False)
                                               or entry.is_file(follow_symlinks=False))):
                folders.add(os.path.join(root, entry.name, assignment))
        return folders

    def init_destination(self, assignment_id: str, student_id: str) -> bool:
        if student_id in (self.coursedir.student_id_exclude or "").split(","):
            return super().init_destination(assignment_id, student_id)  # skipped, unread
        with self._refusing(assignment_id, student_id):
            self._notebooks = gradebook_notebooks(self.coursedir.db_url,
                                                  self.coursedir.course_id, assignment_id)
            check_folder(self._submitted_root(), student_id, assignment_id, self.limits,
                         self._notebooks)
        return super().init_destination(assignment_id, student_id)

    def convert_single_notebook(self, notebook_filename: str) -> None:
        try:
            super().convert_single_notebook(notebook_filename)
        except SchemaMismatchError as error:
            # nbgrader stops every later student on this error (it means an instructor's
            # notebook needs `nbgrader update`); here it can only come from the submission.
            info = self.init_single_notebook_resources(notebook_filename)["nbgrader"]
            with self._refusing(info["assignment"], info["student"]):
                raise SubmissionRefused(
                    f"{info['notebook']}.ipynb has nbgrader metadata of schema version "
                    f"{error.actual_version!r}, not {error.expected_version}: its metadata "
                    "was edited") from None


class _LogRefusal:
    """Log a refusal as its one line, and raise it for nbgrader to count as a failure."""

    def __init__(self, converter: CheckedAutograde, assignment_id: str, student_id: str):
        self.converter, self.assignment, self.student = converter, assignment_id, student_id

    def __enter__(self) -> "_LogRefusal":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        if kind is SubmissionRefused and not getattr(error, "logged", False):
            line = refusal_line(self.student, self.assignment, error)
            self.converter.log.error(line)
            refused = SubmissionRefused(line)
            refused.logged = True
            raise refused from None
        return False


def refusal_in_log(log: str | None, student: str, assignment: str) -> str | None:
    """The reason a refusal gave in nbgrader's captured log (``capture_log``), or None."""
    prefix = "[ERROR] " + refusal_line(student, assignment, "")
    for line in (log or "").splitlines():
        if line.startswith(prefix):
            return line[len(prefix):]
    return None


def use_checked_autograde() -> None:
    """Make ``nbgrader autograde`` and ``NbGraderAPI.autograde`` (the batch grader, the
    formgrader) grade with ``CheckedAutograde``; nbgrader_config.py calls this."""
    # Deferred: nbgrader's apps take 1.5 s to import, which collect and the checks need not.
    import nbgrader.apps.api
    import nbgrader.apps.autogradeapp
    nbgrader.apps.autogradeapp.Autograde = CheckedAutograde
    nbgrader.apps.api.Autograde = CheckedAutograde
