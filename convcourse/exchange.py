"""The student's side of nbgrader's exchange for this course: a submission nobody else reads.

Students fetch and submit with nbgrader's own exchange (`nbgrader fetch_assignment`, `nbgrader
submit`, or JupyterLab's Assignment List), as their own Linux users, through the exchange
folder of the machine (``DEFAULT_ROOT``, or ``CONVCOURSE_EXCHANGE``). The machine-wide
nbgrader_config.py that `make exchange` writes (convgrader/exchange.py) selects the submit
below in place of nbgrader's.

Why: stock `nbgrader submit` leaves the submission in ``<root>/<course>/inbound/`` as a
folder of mode 777 holding files of mode 644. The inbound folder cannot be listed (733), so
the random name hides it, but anyone who learns the name (it is in the student's home, in
logs) can read the answers and ``submission_secret.txt``, from which the name of the
student's feedback file is made, and can change or delete them. Here the submission's files
are 640 and its folders 770: readable by its student (the owner) and by the group of the
inbound folder, the instructor's group (nbgrader makes the inbound folder set-group-ID so
that submissions get it), and by nobody else.
"""
import grp
import logging
import os
import shutil
import stat
from typing import Callable, Collection

from nbgrader.exchange.default.submit import ExchangeSubmit
from nbgrader.utils import ignore_patterns

DEFAULT_ROOT = "/srv/nbgrader/exchange"
COURSE_ID = "conv-basics"
SUBMISSION_FILE_MODE = 0o640
SUBMISSION_FOLDER_MODE = 0o770


def exchange_root() -> str:
    """The exchange folder: CONVCOURSE_EXCHANGE when set, else DEFAULT_ROOT."""
    return os.environ.get("CONVCOURSE_EXCHANGE") or DEFAULT_ROOT


class PrivateSubmit(ExchangeSubmit):
    """nbgrader's submit, leaving a submission only its student and the instructors read."""

    def init_dest(self) -> None:
        super().init_dest()
        inbound = os.stat(self.inbound_path)
        if not inbound.st_mode & stat.S_ISGID:
            self.fail(f"{self.inbound_path} is not set-group-ID, so your instructor could not "
                      "read your submission: ask your instructor to run "
                      "`nbgrader release_assignment` again, which sets it.")
        if inbound.st_gid in os.getgroups() and inbound.st_uid != os.getuid():
            try:
                group = grp.getgrgid(inbound.st_gid).gr_name
            except KeyError:
                group = str(inbound.st_gid)
            self.log.warning(
                "You are in the group %s of %s: everyone in it can read the submissions "
                "there. Instructors should own the course's exchange folder with a group of "
                "their own.", group, self.inbound_path)

    def do_copy(self, src: str, dest: str, log: logging.Logger | None = None) -> None:
        if os.path.dirname(dest) != self.inbound_path:
            return super().do_copy(src, dest, log)  # the copy in the student's own cache
        # nbgrader's copy (shutil.copytree) ends by giving each folder the source's mode,
        # which drops the set-group-ID bit a folder inherits from inbound/ (the student is not
        # in that group), so the files nbgrader writes next (timestamp.txt,
        # submission_secret.txt) would get the student's own group and the instructor could
        # not read them. Here folders are made, never chmod-ed, so all of it gets the group.
        size, limit = self.get_size(src), 1000 * self.coursedir.max_dir_size
        if size > limit:
            self.log.error("Directory size is too big")
            raise RuntimeError(f"Directory size is too big. Size is {size}, maximum size is {limit}")
        ignore = ignore_patterns(exclude=self.coursedir.ignore, include=self.coursedir.include,
                                 max_file_size=self.coursedir.max_file_size, log=self.log)
        _copy_keeping_group(src, dest, ignore)

    def set_perms(self, dest: str, fileperms: int, dirperms: int) -> None:
        # nbgrader calls this on the new submission only (with 644 and 755).
        super().set_perms(dest, SUBMISSION_FILE_MODE, SUBMISSION_FOLDER_MODE)

    def copy_files(self) -> None:
        dest = os.path.join(self.inbound_path, self.assignment_filename)
        try:
            super().copy_files()
        finally:
            # nbgrader makes the submission's own folder 777 "so the instructor can delete
            # it": the instructor's group can (770), nobody else may enter it.
            if os.path.isdir(dest) and not os.path.islink(dest):
                os.chmod(dest, SUBMISSION_FOLDER_MODE)


def _copy_keeping_group(src: str, dest: str,
                        ignore: Callable[[str, list[str]], Collection[str]]) -> None:
    """Copy the tree ``src`` to the new folder ``dest`` as shutil.copytree does (links
    followed, ``ignore`` as its argument), but with no mode copied: each folder and file is
    created, so it inherits the group of a set-group-ID parent."""
    os.mkdir(dest, 0o700)
    names = os.listdir(src)
    ignored = ignore(src, names)
    for name in names:
        if name in ignored:
            continue
        source, target = os.path.join(src, name), os.path.join(dest, name)
        if os.path.isdir(source):
            _copy_keeping_group(source, target, ignore)
        else:
            shutil.copyfile(source, target)
