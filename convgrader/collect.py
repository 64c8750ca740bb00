"""nbgrader's collect, trusting only what the operating system says about a submission.

Stock ``nbgrader collect`` (``nbgrader.exchange.default.collect``) reads everything from the
name of an entry of the exchange's ``inbound/`` folder, ``<student>+<assignment>+<time>+<id>``,
which any student writes: `nbgrader submit --student=OTHER`, or a folder made by hand, was
collected as OTHER's work (nbgrader only logged "cheating attempt?"); a name with a time in
2099 beat the student's later real submission; a late submission named and stamped
(``timestamp.txt``) before the due date counted as on time. And it copies the entry with
``shutil.copytree``, following links: an entry that is a link to the course's ``source/``
was collected, a link to ``/etc/shadow`` became a file in ``submitted/``, a link to
``/dev/zero`` was copied until a file-size limit stopped it.

``TrustedCollect`` (``c.ExchangeFactory.collect`` in nbgrader_config.py) is nbgrader's
``ExchangeCollect`` with its three steps replaced (the walk of an entry is
``convgrader.inbound.scan_entry``):

- **who**: the student of an entry is its owner. An entry is refused unless it, and every
  file and folder in it, belongs to the user its name gives (a hard link to another's file,
  or a copy owned by someone else, is refused too);
- **when**: the newest inode change time (ctime) of the entry and everything in it. The
  kernel sets it on every change and no student can set it back (renaming an old folder
  in, or hard-linking an old file, changes it too), so a student can only make it later.
  It chooses each student's latest submission (and, with ``--before-duedate``, the latest
  before the due date), and is what ``submitted/<student>/<assignment>/timestamp.txt``
  holds, in nbgrader's format, so lateness is computed from it. The submission's own
  ``timestamp.txt`` is advisory: a warning names it when it is off by over 5 minutes. The
  time is the end of the student's submit (nbgrader's own stamp is its start, a fraction of
  a second earlier), and the exchange's file system's: copying or restoring the exchange
  makes every submission later, so collect before moving it;
- **what**: the entry is walked and copied without following any link (``lstat``, and
  ``openat`` with ``O_NOFOLLOW`` from the inbound folder down, each opened file or folder
  checked again by ``fstat``, and each file's ctime read again after its bytes): links,
  devices, FIFOs, sockets, mount points (a student's FUSE file system says any owner and
  time) and anything else that is not a regular file or folder of the inbound folder's
  file system are refused without being opened; the entry's bytes, files and folders and
  depth are bounded (``SubmissionLimits``, and nbgrader's ``CourseDirectory.max_dir_size``).
  Nothing of a refused entry is copied into submitted/; copies get no set-user-ID bit.

A refused entry is logged as one line, ``<owner>/<assignment>: <entry>: <reason>``, and kept
in ``collect_refusals.csv`` in the course folder (``read_refusals``: assignment, entry,
owner, named, reason, collected_at; an entry examined again, or removed from inbound, loses
its row). A student's refused entries are passed over and their latest accepted one is
collected. ``nbgrader collect`` still exits 0: every other student is collected.
``CollectApp.check_owner`` no longer applies: the owner is always checked.

The inbound folder must be the instructor's, and is made sticky (nbgrader makes it 2733,
where a student who learns another's entry name can rename it: a later ctime, or another's
name); `make exchange` creates it so (``convgrader.exchange``). What else this relies on:
each student submits as their own Linux user (one uid per student, not JupyterHub's shared
``jovyan``), and no other student can write into a submission folder, which
``convcourse.exchange.PrivateSubmit`` ensures (folders 770, group the instructors'); stock
submit leaves the folder mode 777, where another student who learns its name could add a
file (and so have it refused, or later).
"""
import csv
import datetime
import fnmatch
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.utils import parse_utc
from traitlets import Instance, default

from convgrader.inbound import Scan, named_student, scan_entry, trusted_time, user_id, user_name
from convgrader.submissions.folders import (OPEN_DIR, SubmissionLimits, SubmissionRefused,
                                            matches, refusal_line, show)

REFUSALS = "collect_refusals.csv"
REFUSAL_FIELDS = ("assignment", "entry", "owner", "named", "reason", "collected_at")
ADVISORY_SLACK = datetime.timedelta(minutes=5)

@dataclass
class Candidate:
    """An accepted inbound entry: its student (owner), name and trusted time."""
    student: str
    uid: int
    entry: str
    ctime_ns: int
    utc: datetime.datetime  # naive UTC, as nbgrader compares times


class TrustedCollect(ExchangeCollect):
    """nbgrader's collect: each submission's student is its owner, its time its newest
    ctime, and nothing is followed or copied that is not the student's own regular files
    and folders."""

    limits = Instance(SubmissionLimits)

    @default("limits")
    def _limits_default(self) -> SubmissionLimits:
        return SubmissionLimits(parent=self)

    _inbound_fd: int | None = None
    refusals: list[dict[str, str]]  # rows of collect_refusals.csv
    examined: set[str]  # inbound entries this collect looked at
    listed: set[str] | None  # inbound's entries, once it was listed
    collected_at: datetime.datetime
    duedate: datetime.datetime | None

    if TYPE_CHECKING:  # nbgrader's, untyped: it logs the message and raises ExchangeError
        def fail(self, msg: str) -> NoReturn:
            ...

    def _inbound(self) -> int:
        """The inbound folder's descriptor, open from ``init_src`` to the end of ``start``."""
        assert self._inbound_fd is not None, "init_src opens the inbound folder first"
        return self._inbound_fd

    def start(self) -> None:
        self.refusals, self.examined, self.listed = [], set(), None
        self.collected_at = datetime.datetime.now(datetime.timezone.utc)
        try:
            return super().start()
        finally:
            if self._inbound_fd is not None:
                os.close(self._inbound_fd)
                self._inbound_fd = None
            if self.listed is not None:
                try:
                    record_refusals(self.coursedir.root, self.coursedir.assignment_id,
                                    self.listed - self.examined, self.refusals)
                except OSError as error:
                    self.log.error("The refusals above are not kept in %s: %s",
                                   refusals_file(self.coursedir.root), error)

    # -- which entries, whose, and when -------------------------------------------------

    def init_src(self) -> None:
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, "inbound")
        self._inbound_fd = self._open_inbound()
        self.duedate = self._duedate()
        pattern = f"{self.coursedir.student_id or '*'}+{self.coursedir.assignment_id}+*"
        found: dict[str, list[Candidate]] = {}
        self.listed = listed = set(os.listdir(self._inbound_fd))
        for entry in sorted(listed):
            if matches(entry, pattern):
                self.examined.add(entry)
                candidate = self._examine(entry)
                if candidate is not None:
                    found.setdefault(candidate.student, []).append(candidate)
        self.src_records = [self._in_order(mine) for _, mine in sorted(found.items())]

    def _open_inbound(self) -> int:
        """The inbound folder, opened without following a link below the exchange root."""
        fd: int | None = None
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as error:
            self.fail(f"Cannot open the exchange {self.root}: {error.strerror}")
        try:
            for name in (self.coursedir.course_id, "inbound"):
                parent, fd = fd, None
                try:
                    fd = os.open(name, OPEN_DIR, dir_fd=parent)
                finally:
                    os.close(parent)
            os.listdir(fd)
            self._check_inbound(fd)
            return fd
        except OSError as error:
            if fd is not None:
                os.close(fd)
            self.fail(f"Course not found, or not a folder you can read: {self.inbound_path} "
                      f"({error.strerror})")
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise

    def _check_inbound(self, fd: int) -> None:
        """The inbound folder must be the instructor's (a student who made it could rename
        or remove every submission in it), and sticky: nbgrader makes it 2733, where a
        student who learns another's entry name can rename it, which makes it later (a new
        ctime) or, renamed for someone else, refused. Sticky, only its owner can."""
        st = os.fstat(fd)
        if st.st_uid not in (os.geteuid(), 0) and os.geteuid() != 0 \
                and not self.coursedir.groupshared:
            self.fail(f"{self.inbound_path} belongs to {user_name(st.st_uid)}, not to you: "
                      "whoever owns it can rename or remove the submissions in it. Ask an "
                      "administrator to run `make exchange INSTRUCTOR=<you>` for a new exchange.")
        if not st.st_mode & stat.S_ISVTX and st.st_uid == os.geteuid():
            os.fchmod(fd, stat.S_IMODE(st.st_mode) | stat.S_ISVTX)
            self.log.warning("%s was not sticky: a student who learned the name of another's "
                             "submission could rename it. It is now (mode %o).",
                             self.inbound_path, stat.S_IMODE(st.st_mode) | stat.S_ISVTX)

    def _duedate(self) -> datetime.datetime | None:
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                return gb.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                return None

    def _examine(self, entry: str) -> Candidate | None:
        """The entry as a Candidate, or None when it is refused (and recorded)."""
        named = named_student(entry)
        try:
            st = os.stat(entry, dir_fd=self._inbound_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None  # removed since it was listed
        owner = user_name(st.st_uid)
        try:
            if named is None or user_id(named) != st.st_uid:
                raise SubmissionRefused(f"it is named for {named or '(no student)'}, but "
                                        f"{owner} made it: a student submits only as "
                                        "themselves")
            scan = scan_entry(self._inbound(), entry, st.st_uid, self.limits,
                              self._max_bytes())
        except SubmissionRefused as error:
            self._refuse(owner, named, entry, str(error))
            return None
        utc = trusted_time(scan.ctime_ns).replace(tzinfo=None)
        return Candidate(owner, st.st_uid, entry, scan.ctime_ns, utc)

    def _max_bytes(self) -> int:
        return min(self.limits.max_bytes, 1000 * self.coursedir.max_dir_size)

    def _in_order(self, mine: list[Candidate]) -> list[Candidate]:
        """A student's accepted entries, the one to collect first: the latest, or with
        ``before_duedate`` the latest before the due date (else the latest)."""
        mine = sorted(mine, key=lambda c: c.ctime_ns, reverse=True)
        duedate = self.duedate
        if duedate is not None and self.before_duedate:
            mine.sort(key=lambda c: c.utc > duedate)  # stable: on time first
        return mine

    def _refuse(self, owner: str, named: str | None, entry: str, reason: str) -> None:
        line = refusal_line(owner, self.coursedir.assignment_id, f"{show(entry, 200)}: {reason}")
        self.log.error(line)
        self.refusals.append({"assignment": self.coursedir.assignment_id, "entry": entry,
                              "owner": owner, "named": named or "", "reason": reason,
                              "collected_at": self.collected_at.isoformat(timespec="seconds")})

    # -- copying ------------------------------------------------------------------------

    def init_dest(self) -> None:
        pass

    def copy_files(self) -> None:
        assignment, course = self.coursedir.assignment_id, self.coursedir.course_id
        if not self.src_records:
            self.log.warning("No submissions of '%s' for course '%s' to collect", assignment,
                             course)
            return
        self.log.info("Processing %d submissions of '%s' for course '%s'",
                      len(self.src_records), assignment, course)
        for candidates in self.src_records:
            for candidate in candidates:
                if self._collect(candidate) is not None:
                    break

    def _collect(self, candidate: Candidate) -> bool | None:
        """Collect one entry unless submitted/ has it already (nbgrader's --update and
        --before-duedate rules); None when it was refused while being read."""
        student, assignment = candidate.student, self.coursedir.assignment_id
        dest = self.coursedir.format_path(self.coursedir.submitted_directory, student,
                                          assignment)
        updating = os.path.isdir(dest)
        if updating:
            existing = self.coursedir.get_existing_timestamp(dest)
            newer = self.update and (existing is None or candidate.utc > existing)
            other = self.before_duedate and existing != candidate.utc
            if not (newer or other):
                self.log.info("%s: %s %s", "No newer submission to collect" if self.update
                              else "Submission already exists, use --update to update",
                              student, assignment)
                return True
        try:
            scan = scan_entry(self._inbound(), candidate.entry, candidate.uid, self.limits,
                              self._max_bytes(), self._copied)
        except SubmissionRefused as error:
            self._refuse(student, student, candidate.entry, str(error))
            return None
        when = trusted_time(scan.ctime_ns, self.timezone)
        self.log.info("%s submission: %s %s (inbound/%s, %s)",
                      "Updating" if updating else "Collecting", student, assignment,
                      show(candidate.entry, 200), when.strftime(self.timestamp_format))
        self._advise(student, scan, when)
        if updating:
            shutil.rmtree(dest)
        try:
            write_submission(dest, scan, when.strftime(self.timestamp_format),
                             self.coursedir.groupshared)
        except OSError as error:  # the instructor's disk: the next student may still fit
            shutil.rmtree(dest, ignore_errors=True)
            self.log.error("%s", refusal_line(student, assignment, f"{show(candidate.entry, 200)}"
                                              f": could not be written to {dest}: {error}"))
        return True

    def _copied(self, name: str, size: int | None) -> bool:
        """Whether nbgrader's copy would take this file (``size``) or folder (None):
        ``CourseDirectory.ignore``, ``include`` and ``max_file_size``, as nbgrader's
        ``ignore_patterns``."""
        course = self.coursedir
        if any(fnmatch.fnmatch(name, pattern) for pattern in course.ignore):
            return False
        if size is None:
            return True
        if course.include and not any(fnmatch.fnmatch(name, p) for p in course.include):
            return False
        if course.max_file_size and size > 1000 * course.max_file_size:
            self.log.warning("Ignoring file too large '%s' (see config option "
                             "CourseDirectory.max_file_size)", show(name))
            return False
        return True

    def _advise(self, student: str, scan: Scan, when: datetime.datetime) -> None:
        """Warn when the submission's own timestamp.txt is far from the trusted time."""
        said = next((data for path, data, _ in scan.files if path == "timestamp.txt"), None)
        try:
            advisory = parse_utc(said.decode("utf-8").strip()) if said else None
        except (ValueError, OverflowError, UnicodeDecodeError):
            advisory = None
        trusted = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        if said is not None and (advisory is None or abs(advisory - trusted) > ADVISORY_SLACK):
            self.log.warning("%s", refusal_line(
                student, self.coursedir.assignment_id,
                f"its timestamp.txt says {show(said.decode('utf-8', 'replace').strip(), 60)}; "
                f"the exchange's clock says {when.strftime(self.timestamp_format)}, which is "
                "recorded"))


def write_submission(dest: str, scan: Scan, timestamp: str, groupshared: bool = False) -> None:
    """Write what ``scan`` read into the new folder ``dest``, and the trusted timestamp.txt
    in place of the submission's (a file or a folder of that name)."""
    def kept(rel: str) -> bool:
        return rel != "timestamp.txt" and not rel.startswith("timestamp.txt/")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    os.mkdir(dest)
    for rel in filter(kept, scan.folders):
        os.mkdir(os.path.join(dest, rel))
    for rel, data, mode in scan.files:
        if not kept(rel):
            continue
        fd = os.open(os.path.join(dest, rel),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(os.path.join(dest, rel), (mode & 0o777) | 0o600)
    with open(os.path.join(dest, "timestamp.txt"), "x") as stamp:
        stamp.write(timestamp)
    if groupshared:  # as nbgrader's do_copy: folders ug+rwx and set-group-ID, files ug+rw
        for folder, _, files in os.walk(dest):
            os.chmod(folder, (os.stat(folder).st_mode | 0o2770) & 0o2777)
            for name in files:
                path = os.path.join(folder, name)
                os.chmod(path, (os.stat(path).st_mode | 0o660) & 0o777)


# -- the refusals, for the instructor and the class report -------------------------------

def refusals_file(course_root: Path | str) -> Path:
    return Path(course_root, REFUSALS)


def read_refusals(course_root: Path | str) -> list[dict[str, str]]:
    """Every refusal the last collects recorded: dicts of ``REFUSAL_FIELDS``."""
    try:
        with open(refusals_file(course_root), newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def record_refusals(course_root: Path | str, assignment: str, unexamined: set[str],
                    refusals: list[dict[str, str]]) -> None:
    """Keep the rows of other assignments, and of this one's entries still in inbound that
    this collect did not examine (``--student``); add this collect's refusals. An entry
    examined again, or removed from inbound, loses its old row."""
    rows = [r for r in read_refusals(course_root)
            if r["assignment"] != assignment or r["entry"] in unexamined]
    rows += refusals
    path = refusals_file(course_root)
    if not rows and not path.exists():
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with open(temporary, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=REFUSAL_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)
