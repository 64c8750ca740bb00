"""nbgrader's exchange on one machine: the instructor's side, and the administrator's setup.

Students and instructors run nbgrader as their own Linux users; the exchange is a folder all
of them reach (``convcourse.exchange.DEFAULT_ROOT``, /srv/nbgrader/exchange, or the folder
CONVCOURSE_EXCHANGE names). An administrator makes it once, with the machine-wide
nbgrader_config.py that tells every user's nbgrader (and JupyterLab's Assignment List) where
it is and which course this is::

    sudo make exchange INSTRUCTOR=<the instructor's user name>
                              # python -m convgrader.exchange setup

``setup`` creates the exchange folder (world-writable with the sticky bit, 1777, as nbgrader's
documentation asks) and writes ``<config dir>/nbgrader_config.py`` (default /etc/jupyter,
where nbgrader reads system-wide configuration whatever Python environment a student uses).

What nbgrader's default exchange lets students read of each other's work, and what the
course changes (its own configuration selects these classes; nbgrader is not patched):

- submissions (``inbound/``): stock, a folder of mode 777 with files of mode 644, hidden only
  by a random name; ``convcourse.exchange.PrivateSubmit`` (the student's side) makes them
  readable by the student and the instructors' group only;
- feedback (``feedback/<hash>.html``): stock, mode 644, hidden only by the hash name, and
  the instructor, who is not root, cannot give the file to the student;
  ``PrivateReleaseFeedback`` below gives each file a POSIX access control list: the
  instructor reads and writes it, the instructors' group reads it, and of all other users
  only the student whose Linux name is the student id.

- collecting: stock, a submission's student and time are what its name says, and links in
  it are followed; ``convgrader.collect.TrustedCollect`` takes the owner and the newest
  ctime, and refuses links, special files and others' files (the machine-wide config
  selects it too, for an instructor who collects outside the course folder).

Listing ``inbound/`` (733) and ``feedback/`` (711) is refused to students by nbgrader itself.
``setup`` creates ``inbound/`` for the instructor, sticky as well (3733): in nbgrader's 2733
a student who learns the name of another's submission can rename it.
"""
import argparse
import glob
import os
import pwd
import re
import stat
import struct
import sys
from pathlib import Path

from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback
from nbgrader.utils import notebook_hash

from convcourse.exchange import COURSE_ID, DEFAULT_ROOT

SYSTEM_CONFIG_DIR = "/etc/jupyter"
EXCHANGE_MODE = 0o1777
INBOUND_MODE = 0o3733

# Linux's POSIX ACL extended attribute (linux/posix_acl_xattr.h): a version, then entries
# (tag, permissions, id) sorted by tag, then id.
_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
_UNDEFINED_ID = 0xFFFFFFFF
_READ, _WRITE = 4, 2


def readable_by_owner_group_and(path: Path | str, uid: int) -> None:
    """Set ``path``'s access list: its owner reads and writes, its group and the user
    ``uid`` read, nobody else (mode 640 plus one named user)."""
    entries = [(_USER_OBJ, _READ | _WRITE, _UNDEFINED_ID), (_USER, _READ, uid),
               (_GROUP_OBJ, _READ, _UNDEFINED_ID), (_MASK, _READ, _UNDEFINED_ID),
               (_OTHER, 0, _UNDEFINED_ID)]
    value = struct.pack("<I", _ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in entries)
    os.setxattr(path, _ACL_XATTR, value)


class PrivateReleaseFeedback(ExchangeReleaseFeedback):
    """nbgrader's release_feedback, each feedback file readable by its own student only."""

    def copy_files(self) -> None:
        exclude = set(filter(None, (self.coursedir.student_id_exclude or "").split(",")))
        pattern = re.escape(os.path.sep).join([
            self.coursedir.format_path(self.coursedir.feedback_directory, "(?P<student_id>.*)",
                                       self.coursedir.assignment_id, escape=True),
            "(?P<notebook_id>.*).html"])
        for html_file in sorted(glob.glob(os.path.join(self.src_path, "*.html"))):
            match = re.match(pattern, html_file)
            if match is None:
                self.log.error("Could not match '%s' with regexp '%s'", html_file, pattern)
                continue
            student_id, notebook_id = match["student_id"], match["notebook_id"]
            if student_id in exclude:
                self.log.debug("Skipping student '%s'", student_id)
                continue
            folder = os.path.dirname(html_file)
            with open(os.path.join(folder, "timestamp.txt")) as f:
                timestamp = f.read()
            with open(os.path.join(folder, "submission_secret.txt")) as f:
                secret = f.read()
            try:
                uid = pwd.getpwnam(student_id).pw_uid
            except KeyError:
                uid = None
                self.log.warning("No user named '%s' on this machine: their feedback is released "
                                 "readable by the instructors only.", student_id)
            checksum = notebook_hash(secret=secret, notebook_id=notebook_id)
            released = os.path.join(self.dest_path, f"{checksum}.html")
            temporary = os.path.join(self.dest_path, f"{checksum}-tmp.html")
            self.log.info("Releasing feedback for student '%s' on assignment '%s/%s/%s' (%s)",
                          student_id, self.coursedir.course_id, self.coursedir.assignment_id,
                          notebook_id, timestamp)
            if os.path.lexists(temporary):
                os.unlink(temporary)
            # Private from its creation (0600), then the access list, then in place at once.
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out, open(html_file, "rb") as source:
                out.write(source.read())
            try:
                if uid is not None:
                    readable_by_owner_group_and(temporary, uid)
                else:
                    os.chmod(temporary, 0o640)
            except OSError as error:
                os.unlink(temporary)
                self.fail(f"Cannot make {released} readable by {student_id} alone ({error}): "
                          "the exchange must be on a file system with POSIX ACLs (ext4, xfs, "
                          "btrfs, tmpfs do).")
            os.replace(temporary, released)
            self.log.info("Feedback released to: %s", released)


STUDENT_CONFIG = '''\
"""nbgrader's machine-wide configuration for the course {course_id!r}, written by
`make exchange` (python -m convgrader.exchange setup). Every user's nbgrader and JupyterLab's
Assignment List read it; an nbgrader_config.py in the folder nbgrader runs in (the
instructor's course directory) overrides it."""
import importlib.util
import os

c = get_config()  # noqa: F821

# The exchange folder of this machine; CONVCOURSE_EXCHANGE overrides it.
c.Exchange.root = os.environ.get("CONVCOURSE_EXCHANGE") or {root!r}
c.CourseDirectory.course_id = {course_id!r}
# Validate shows the checks' failure lines whole (nbgrader cuts them at 90 characters).
c.Validator.width = 300

# A submission readable by its student and the instructors only (convcourse/exchange.py),
# when the course's package is installed in the Python environment nbgrader runs from.
if importlib.util.find_spec("convcourse") is not None:
    c.ExchangeFactory.submit = "convcourse.exchange.PrivateSubmit"
# An instructor's collect run outside the course folder trusts owners and the kernel's
# times too, never names (convgrader/collect.py), as the course's nbgrader_config.py says.
if importlib.util.find_spec("convgrader") is not None:
    c.ExchangeFactory.collect = "convgrader.collect.TrustedCollect"
'''


def student_config(root: Path | str = DEFAULT_ROOT, course_id: str = COURSE_ID) -> str:
    """The text of the machine-wide nbgrader_config.py."""
    return STUDENT_CONFIG.format(root=str(root), course_id=course_id)


def setup(root: Path | str = DEFAULT_ROOT, config_dir: Path | str = SYSTEM_CONFIG_DIR,
          instructor: str | None = None, course_id: str = COURSE_ID) -> Path:
    """Create the exchange folder (mode 1777) and write ``config_dir``/nbgrader_config.py;
    return the config file's path. Idempotent. With ``instructor`` (a user name), also
    create the course's folder in the exchange owned by that user (mode 755, as
    `nbgrader release_assignment` makes it), so that no student can take the name first,
    and its inbound folder (``_make_inbound``)."""
    root, config_dir = Path(root), Path(config_dir)
    root.mkdir(parents=True, exist_ok=True)
    if stat.S_IMODE(root.stat().st_mode) != EXCHANGE_MODE:
        os.chmod(root, EXCHANGE_MODE)
    if instructor:
        user = pwd.getpwnam(instructor)
        course = root / course_id
        course.mkdir(mode=0o755, exist_ok=True)
        owner = course.lstat()
        if course.is_symlink() or (owner.st_uid not in (user.pw_uid, os.geteuid())):
            raise PermissionError(f"{course} already exists and belongs to uid {owner.st_uid}, "
                                  f"not {instructor}: remove it first")
        os.chown(course, user.pw_uid, user.pw_gid, follow_symlinks=False)
        os.chmod(course, 0o755)
        _make_inbound(course / "inbound", user)
    config_dir.mkdir(parents=True, exist_ok=True)
    config = config_dir / "nbgrader_config.py"
    config.write_text(student_config(root))
    os.chmod(config, 0o644)
    return config


def _make_inbound(inbound: Path, user: pwd.struct_passwd) -> None:
    """The course's inbound folder, ``user``'s, mode 3733: students create their submissions
    in it (write, search) but cannot list it; set-group-ID so that submissions get the
    instructor's group (as `nbgrader release_assignment` makes it, 2733); and sticky, which
    nbgrader omits: there any student who learned the name of another's submission could
    rename it, which changes its time (convgrader/collect.py trusts the ctime) or its name."""
    inbound.mkdir(exist_ok=True)
    owner = inbound.lstat()
    if inbound.is_symlink() or owner.st_uid not in (user.pw_uid, os.geteuid()):
        raise PermissionError(f"{inbound} already exists and belongs to uid {owner.st_uid}, "
                              f"not {user.pw_name}: remove it first")
    os.chown(inbound, user.pw_uid, user.pw_gid, follow_symlinks=False)
    os.chmod(inbound, INBOUND_MODE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("setup", help="create the exchange folder and the machine-wide "
                                          "nbgrader_config.py (as an administrator, once)")
    s.add_argument("--root", default=os.environ.get("CONVCOURSE_EXCHANGE") or DEFAULT_ROOT)
    s.add_argument("--config-dir", default=SYSTEM_CONFIG_DIR)
    s.add_argument("--instructor", help="the instructor's user name: their course folder in "
                                        "the exchange is made now, theirs")
    args = parser.parse_args(argv)
    try:
        config = setup(args.root, args.config_dir, args.instructor)
    except KeyError:
        print(f"cannot set up the exchange: there is no user {args.instructor!r}.", file=sys.stderr)
        return 1
    except PermissionError as error:
        print(f"cannot set up the exchange: {error}. Ask an administrator to run "
              f"'sudo make exchange' (as root).", file=sys.stderr)
        return 1
    course = f", {Path(args.root) / COURSE_ID} {args.instructor}'s" if args.instructor else ""
    print(f"exchange folder {args.root} (mode 1777){course}; every user's nbgrader "
          f"configuration {config}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
