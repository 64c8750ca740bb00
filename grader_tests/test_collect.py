"""`nbgrader collect` trusts only what the operating system says (convgrader/collect.py).

Run as root (skipped otherwise): students are real Linux accounts (``users.other_users``);
their inbound entries are made as nbgrader submit makes them (a folder 770 and files 640,
owned by the student, in an inbound folder 2733) and owned by them, and one test runs the
real `nbgrader submit` as two of them. The collect itself runs in this process, as the
instructor would run it (nbgrader's ``ExchangeCollect`` API, the class the course's
nbgrader_config.py selects), on a throwaway exchange and course folder.

Each test asserts who is collected, from which inbound entry, the trusted time in
``submitted/<student>/<assignment>/timestamp.txt`` (the newest ctime of the entry, read
here with ``lstat``), each refusal's line and row of collect_refusals.csv, and that nothing
refused reached submitted/. To see them fail on stock nbgrader, run with
``CONVCOURSE_COLLECT_CLASS=nbgrader.exchange.default.collect.ExchangeCollect`` (the process's
file-size limit is 64 MiB while collecting: stock collect copies a link to /dev/zero).
"""
import datetime
import importlib
import json
import logging
import os
import resource
import secrets
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

import users
from convcourse.exchange import COURSE_ID
from convgrader import fs

A = "01_multi_input_channels"
COLLECT = os.environ.get("CONVCOURSE_COLLECT_CLASS", "convgrader.collect.TrustedCollect")
FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"  # nbgrader's Exchange.timestamp_format
REFUSED = "a submission may hold only regular files and folders"
AS_THEMSELVES = "a student submits only as themselves"
COURSE_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def who():
    sofia, carl, li = users.other_users(["convcourse-sofia", "convcourse-carl", "convcourse-li"])
    return SimpleNamespace(sofia=sofia, carl=carl, li=li)


@pytest.fixture
def ex():
    """A throwaway exchange (1777, the course's folder, inbound 2733, outbound/A) and a
    course folder with a gradebook that has the assignment."""
    base = Path(tempfile.mkdtemp(prefix="convcourse-collect-", dir="/tmp"))
    os.chmod(base, 0o755)
    root = base / "exchange"
    root.mkdir(mode=0o1777)
    os.chmod(root, 0o1777)
    inbound = root / COURSE_ID / "inbound"
    (root / COURSE_ID / "outbound" / A).mkdir(parents=True)
    inbound.mkdir()
    os.chmod(inbound, 0o2733)
    course = base / "course"
    (course / "source" / A).mkdir(parents=True)
    (course / "source" / A / f"{A}.ipynb").write_text(notebook("the instructor's solution"))
    db = course / "gradebook.db"
    # A table first, so that nbgrader's Gradebook does not run alembic (3 s) for a new one.
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{db}", COURSE_ID) as gb:
        gb.update_or_create_assignment(A)
    try:
        yield SimpleNamespace(base=base, root=root, inbound=inbound, course=course,
                              db_url=f"sqlite:///{db}")
    finally:
        fs.remove_tree(base)


def notebook(marker):
    """A small notebook whose one cell says ``marker`` (who wrote it)."""
    return json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": marker}],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def stamp(when):
    return when.strftime("%Y-%m-%d %H:%M:%S.%f") + " UTC"


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def make_entry(ex, owner, named=None, when=None, marker=None, extra=None):
    """An inbound entry as nbgrader submit makes it (folder 770, files 640, the inbound
    folder's group), owned by ``owner``, named for ``named`` (default: the owner) with the
    time ``when`` (default: now) in its name and timestamp.txt; ``extra(folder)`` adds to it
    before it is given to the owner. Returns its name."""
    named, when = named or owner.name, when or now()
    name = f"{named}+{A}+{stamp(when)}+{secrets.token_urlsafe(9)}"
    folder = ex.inbound / name
    folder.mkdir(mode=0o770)
    (folder / f"{A}.ipynb").write_text(notebook(marker or f"{owner.name} in {name}"))
    (folder / "timestamp.txt").write_text(stamp(when))
    (folder / "submission_secret.txt").write_text(secrets.token_hex(64))
    for path in folder.iterdir():
        os.chmod(path, 0o640)
    if extra:
        extra(folder)
    keep = getattr(extra, "keep_owner", None)  # a file that stays another's
    os.lchown(folder, owner.uid, -1)
    for dirpath, dirnames, filenames in os.walk(folder):
        for n in dirnames + filenames:
            if n != keep:
                os.lchown(os.path.join(dirpath, n), owner.uid, -1)
    return name


def newest_ctime(path):
    """The trusted time of an entry, by ``lstat``: its newest ctime, in nbgrader's format."""
    ns = os.lstat(path).st_ctime_ns
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            ns = max(ns, os.lstat(os.path.join(dirpath, n)).st_ctime_ns)
    micro = -(-ns // 1000)
    when = (datetime.datetime.fromtimestamp(micro // 10 ** 6, datetime.timezone.utc)
            + datetime.timedelta(microseconds=micro % 10 ** 6))
    return when.strftime(FORMAT)


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(f"[{record.levelname}] {record.getMessage()}")


@contextmanager
def file_size_limit(limit=64 * 2 ** 20):
    """Stock collect copies a link to /dev/zero until the file-size limit stops it."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)


def collect_class():
    module, name = COLLECT.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def collect(ex, before_duedate=False, update=False, limits=None, cls=None):
    """Run the course's collect (``COLLECT``, or ``cls``) for A as the instructor's nbgrader
    collect would; returns its log lines."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    cls = cls or collect_class()
    config = Config({"SubmissionLimits": limits or {}})
    coursedir = CourseDirectory(config=config, root=str(ex.course), course_id=COURSE_ID,
                                assignment_id=A, db_url=ex.db_url)
    log = logging.getLogger(f"test_collect.{secrets.token_hex(4)}")
    handler = Lines()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    collector = cls(coursedir=coursedir, authenticator=Authenticator(config=config),
                    config=config, root=str(ex.root), before_duedate=before_duedate,
                    update=update, log=log)
    with file_size_limit():
        collector.start()
    return handler.lines


def submitted(ex):
    """{student: notebook text} of every submission in submitted/."""
    root = ex.course / "submitted"
    if not root.exists():
        return {}
    return {p.name: (p / A / f"{A}.ipynb").read_text() for p in sorted(root.iterdir())}


def timestamp(ex, student):
    return (ex.course / "submitted" / student / A / "timestamp.txt").read_text()


def errors(lines):
    return [line for line in lines if line.startswith("[ERROR]")]


def refusal(owner, entry, reason):
    return f"[ERROR] {owner.name}/{A}: {entry}: {reason}"


def recorded(ex):
    from convgrader.collect import read_refusals
    return [(r["assignment"], r["entry"], r["owner"], r["named"], r["reason"])
            for r in read_refusals(ex.course)]


def all_files(ex):
    """Every path under submitted/ (nothing refused may be among them)."""
    root = ex.course / "submitted"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def set_duedate(ex, when):
    from nbgrader.api import Gradebook
    with Gradebook(ex.db_url, COURSE_ID) as gb:
        gb.update_or_create_assignment(A, duedate=when.replace(tzinfo=None))


def tick():
    """Longer than the kernel's coarse clock step, so that two ctimes differ."""
    time.sleep(0.03)


# -- honest students -------------------------------------------------------------------

def test_honest_students_are_collected_with_the_time_the_exchange_recorded(ex, who):
    def extra(folder):
        (folder / "data").mkdir(mode=0o770)
        (folder / "data" / "kernel.csv").write_text("1,2\n3,4\n")
        (folder / ".ipynb_checkpoints").mkdir(mode=0o770)
        (folder / ".ipynb_checkpoints" / "old.ipynb").write_text("{}")
    sofia = make_entry(ex, who.sofia, extra=extra)
    carl = make_entry(ex, who.carl)
    lines = collect(ex)
    assert submitted(ex) == {who.carl.name: notebook(f"{who.carl.name} in {carl}"),
                             who.sofia.name: notebook(f"{who.sofia.name} in {sofia}")}
    assert timestamp(ex, who.sofia.name) == newest_ctime(ex.inbound / sofia)
    assert timestamp(ex, who.carl.name) == newest_ctime(ex.inbound / carl)
    assert (ex.course / "submitted" / who.sofia.name / A / "data" / "kernel.csv").read_text() \
        == "1,2\n3,4\n"
    assert not (ex.course / "submitted" / who.sofia.name / A / ".ipynb_checkpoints").exists()
    assert errors(lines) == [] and recorded(ex) == []


# -- submitting as someone else --------------------------------------------------------

def test_nbgrader_submit_as_another_student_is_refused_and_she_is_collected(ex, who):
    """The real `nbgrader submit --student=<sofia>` run by carl, and sofia's own (the
    course's PrivateSubmit), in the exchange `make exchange` sets up; then the real
    `nbgrader collect`, run by the instructor (not root) in the course, the collect class
    selected by configuration."""
    from convgrader.exchange import setup
    instructor = users.ordinary_user()
    config_dir = ex.base / "etc-jupyter"
    setup(ex.root, config_dir, instructor=instructor.name)
    # The course's exchange lines (the whole file imports the formgrader's pages: 2.5 s more;
    # test_the_course_and_machine_configs_select_the_trusted_collect loads it).
    (ex.course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.CourseDirectory.db_url = {ex.db_url!r}\nc.Exchange.root = {str(ex.root)!r}\n"
        f"c.ExchangeFactory.collect = {COLLECT!r}\n")
    users.give(instructor, ex.course)
    runs = []
    with users.temporary_folder(who.carl) as carl_dir, \
            users.temporary_folder(who.sofia) as sofia_dir:
        for user, folder, args in ((who.carl, carl_dir, ["--student", who.sofia.name]),
                                   (who.sofia, sofia_dir, [])):
            (folder / A).mkdir()
            (folder / A / f"{A}.ipynb").write_text(notebook(f"{user.name}'s answer"))
            users.give(user, folder)
            runs.append(users.popen_as(
                user, [sys.executable, "-m", "nbgrader", "submit", A, *args], cwd=folder,
                env={"JUPYTER_CONFIG_PATH": str(config_dir),
                     "JUPYTER_DATA_DIR": str(folder / ".data")},
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        for run in runs:
            output, _ = run.communicate(timeout=60)
            assert run.returncode == 0, output
    entries = {os.lstat(p).st_uid: p.name for p in ex.inbound.iterdir()}
    forged, own = entries[who.carl.uid], entries[who.sofia.uid]
    assert forged.startswith(f"{who.sofia.name}+{A}+") and own.startswith(f"{who.sofia.name}+")
    run = users.run_as(instructor, [sys.executable, "-m", "nbgrader", "collect", A],
                       cwd=ex.course, env={"JUPYTER_CONFIG_PATH": str(config_dir)}, timeout=60)
    assert run.returncode == 0, run.stderr
    assert submitted(ex) == {who.sofia.name: notebook(f"{who.sofia.name}'s answer")}
    assert timestamp(ex, who.sofia.name) == newest_ctime(ex.inbound / own)
    reason = f"it is named for {who.sofia.name}, but {who.carl.name} made it: {AS_THEMSELVES}"
    line = f"{who.carl.name}/{A}: {forged}: {reason}"
    assert [x for x in run.stderr.splitlines() if "ERROR" in x] == \
        [f"[CollectApp | ERROR] {line}"]
    assert recorded(ex) == [(A, forged, who.carl.name, who.sofia.name, reason)]


def test_a_folder_named_for_another_student_in_2099_does_not_beat_her_later_submission(ex, who):
    forged = make_entry(ex, who.carl, named=who.sofia.name,
                        when=datetime.datetime(2099, 1, 1, tzinfo=datetime.timezone.utc),
                        marker="carl's wrong answer")
    tick()
    own = make_entry(ex, who.sofia, marker="sofia's right answer")
    lines = collect(ex)
    assert submitted(ex) == {who.sofia.name: notebook("sofia's right answer")}
    assert timestamp(ex, who.sofia.name) == newest_ctime(ex.inbound / own)
    reason = f"it is named for {who.sofia.name}, but {who.carl.name} made it: {AS_THEMSELVES}"
    assert errors(lines) == [refusal(who.carl, forged, reason)]
    assert recorded(ex) == [(A, forged, who.carl.name, who.sofia.name, reason)]


def test_an_entry_named_for_no_student_is_refused(ex, who):
    forged = make_entry(ex, who.li, named="nobody-of-this-class")
    lines = collect(ex)
    assert submitted(ex) == {}
    reason = f"it is named for nobody-of-this-class, but {who.li.name} made it: {AS_THEMSELVES}"
    assert errors(lines) == [refusal(who.li, forged, reason)]


def test_a_folder_named_timestamp_txt_gets_the_trusted_file_in_its_place(ex, who):
    def extra(folder):
        (folder / "timestamp.txt").unlink()
        (folder / "timestamp.txt").mkdir(mode=0o770)
        (folder / "timestamp.txt" / "x").write_text("2001-01-01 00:00:00.000000 UTC")
    entry = make_entry(ex, who.carl, extra=extra)
    other = make_entry(ex, who.sofia)
    lines = collect(ex)
    assert sorted(submitted(ex)) == [who.carl.name, who.sofia.name]
    assert timestamp(ex, who.carl.name) == newest_ctime(ex.inbound / entry)
    assert timestamp(ex, who.sofia.name) == newest_ctime(ex.inbound / other)
    assert errors(lines) == []


# -- when ------------------------------------------------------------------------------

def test_own_late_work_named_and_stamped_before_the_due_date_is_recorded_late(ex, who):
    due = now()
    set_duedate(ex, due)
    tick()
    late = make_entry(ex, who.li, when=due - datetime.timedelta(days=3), marker="late work")
    collect(ex)
    assert submitted(ex) == {who.li.name: notebook("late work")}
    recorded_time = timestamp(ex, who.li.name)
    assert recorded_time == newest_ctime(ex.inbound / late)
    from nbgrader.utils import parse_utc
    assert parse_utc(recorded_time) > due.replace(tzinfo=None)


def test_an_old_folder_moved_into_inbound_after_the_due_date_is_late(ex, who):
    """rename() changes the moved folder's ctime: a folder made before the due date and
    moved in after it is late."""
    make = ex.base / "made-early"
    make.mkdir()
    os.chmod(make, 0o777)
    made_in = ex.inbound
    ex.inbound = make  # make the entry outside inbound, then move it in
    name = make_entry(ex, who.li, marker="made early")
    ex.inbound = made_in
    tick()
    due = now()
    set_duedate(ex, due)
    tick()
    os.rename(make / name, ex.inbound / name)
    collect(ex)
    from nbgrader.utils import parse_utc
    assert parse_utc(timestamp(ex, who.li.name)) > due.replace(tzinfo=None)
    assert timestamp(ex, who.li.name) == newest_ctime(ex.inbound / name)


def test_the_latest_submission_is_the_latest_by_the_exchange_clock(ex, who):
    first = make_entry(ex, who.sofia, marker="first, named 2099",
                       when=datetime.datetime(2099, 1, 1, tzinfo=datetime.timezone.utc))
    tick()
    second = make_entry(ex, who.sofia, marker="second",
                        when=datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc))
    collect(ex)
    assert submitted(ex) == {who.sofia.name: notebook("second")}
    assert timestamp(ex, who.sofia.name) == newest_ctime(ex.inbound / second)
    assert newest_ctime(ex.inbound / first) < newest_ctime(ex.inbound / second)


def test_update_takes_a_later_submission_by_the_exchange_clock_only(ex, who):
    first = make_entry(ex, who.carl, marker="first")
    collect(ex)
    tick()
    # Named as if submitted years ago: --update still takes it, it is the latest.
    second = make_entry(ex, who.carl, marker="second",
                        when=datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc))
    assert collect(ex)[-1] == f"[INFO] Submission already exists, use --update to update: " \
                              f"{who.carl.name} {A}"
    assert submitted(ex) == {who.carl.name: notebook("first")}
    assert timestamp(ex, who.carl.name) == newest_ctime(ex.inbound / first)
    collect(ex, update=True)
    assert submitted(ex) == {who.carl.name: notebook("second")}
    assert timestamp(ex, who.carl.name) == newest_ctime(ex.inbound / second)


def test_before_duedate_chooses_by_the_exchange_clock(ex, who):
    on_time = make_entry(ex, who.carl, marker="on time")
    tick()
    due = now()
    set_duedate(ex, due)
    tick()
    # Named a second before the due date (after the real one's name): stock takes it.
    late = make_entry(ex, who.carl, marker="late, named on time",
                      when=due - datetime.timedelta(seconds=1))
    collect(ex, before_duedate=True)
    assert submitted(ex) == {who.carl.name: notebook("on time")}
    assert timestamp(ex, who.carl.name) == newest_ctime(ex.inbound / on_time)
    assert late in os.listdir(ex.inbound)


# -- links and special files -----------------------------------------------------------

def test_an_entry_that_is_a_link_to_the_course_source_is_refused(ex, who):
    entry = f"{who.carl.name}+{A}+{stamp(now())}+link"
    os.symlink(ex.course / "source" / A, ex.inbound / entry)
    os.lchown(ex.inbound / entry, who.carl.uid, -1)
    lines = collect(ex)
    assert submitted(ex) == {} and all_files(ex) == []
    reason = f"it is a symbolic link to {ex.course / 'source' / A}: {REFUSED}"
    assert errors(lines) == [refusal(who.carl, entry, reason)]
    assert recorded(ex) == [(A, entry, who.carl.name, who.carl.name, reason)]


def _link(target, name):
    def extra(folder):
        os.symlink(target, folder / name)
    return extra


def _fifo(folder):
    os.mkfifo(folder / "answers.pipe")


def _device(folder):
    os.mknod(folder / "zero", 0o666 | stat.S_IFCHR, os.makedev(1, 5))


def _socket(folder):
    import socket
    here = os.getcwd()
    os.chdir(folder)  # the full path is longer than a socket's address may be
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.bind("sock")
    finally:
        os.chdir(here)


def _nested_link(folder):
    (folder / "answers").mkdir(mode=0o770)
    os.symlink("/etc/shadow", folder / "answers" / "shadow")


@pytest.mark.parametrize("extra, reason", [
    (_link("/etc/shadow", "shadow"), f"shadow is a symbolic link to /etc/shadow: {REFUSED}"),
    (_nested_link, f"answers/shadow is a symbolic link to /etc/shadow: {REFUSED}"),
    (_link("/dev/zero", "zero"), f"zero is a symbolic link to /dev/zero: {REFUSED}"),
    (_fifo, f"answers.pipe is a named pipe (FIFO): {REFUSED}"),
    (_device, f"zero is a character device: {REFUSED}"),
    (_socket, f"sock is a socket: {REFUSED}"),
], ids=["link-to-shadow", "nested-link", "link-to-dev-zero", "fifo", "device", "socket"])
def test_a_submission_holding_a_link_or_special_file_is_refused_unread(ex, who, extra, reason):
    """The student's earlier honest submission is collected instead; nothing of the
    refused one reaches submitted/."""
    honest = make_entry(ex, who.li, marker="honest, earlier")
    tick()
    bad = make_entry(ex, who.li, marker="with a link", extra=extra)
    started = time.monotonic()
    lines = collect(ex)
    assert time.monotonic() - started < 5  # a FIFO was not opened, /dev/zero not read
    assert submitted(ex) == {who.li.name: notebook("honest, earlier")}
    assert timestamp(ex, who.li.name) == newest_ctime(ex.inbound / honest)
    assert all_files(ex) == [who.li.name, f"{who.li.name}/{A}", f"{who.li.name}/{A}/{A}.ipynb",
                             f"{who.li.name}/{A}/submission_secret.txt",
                             f"{who.li.name}/{A}/timestamp.txt"]
    assert errors(lines) == [refusal(who.li, bad, reason)]
    assert recorded(ex) == [(A, bad, who.li.name, who.li.name, reason)]


def test_a_file_system_mounted_in_a_submission_is_refused(ex, who):
    """A FUSE file system a student mounts says any owner and time: here a tmpfs."""
    mounted = []

    def extra(folder):
        (folder / "answers").mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "none",
                               folder / "answers"], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(folder / "answers")
        (folder / "answers" / "a.txt").write_text("from elsewhere")
    try:
        entry = make_entry(ex, who.li, extra=extra)
        lines = collect(ex)
    finally:
        for path in mounted:
            subprocess.run(["umount", path], check=True)
    assert submitted(ex) == {} and all_files(ex) == []
    reason = f"answers is on another file system (a mount point): {REFUSED}"
    assert errors(lines) == [refusal(who.li, entry, reason)]


def test_a_submission_changed_between_the_check_and_the_copy_is_refused(ex, who):
    """The student swaps the notebook of an entry for a link after collect chose it."""
    honest = make_entry(ex, who.li, marker="honest, earlier")
    tick()
    entry = make_entry(ex, who.li, marker="checked, then swapped")

    class Swapped(collect_class()):
        def init_dest(self):  # between choosing the entries and copying them
            super().init_dest()
            notebook_path = ex.inbound / entry / f"{A}.ipynb"
            notebook_path.unlink()
            os.symlink("/etc/shadow", notebook_path)
            os.lchown(notebook_path, who.li.uid, -1)

    lines = collect(ex, cls=Swapped)
    assert submitted(ex) == {who.li.name: notebook("honest, earlier")}
    assert timestamp(ex, who.li.name) == newest_ctime(ex.inbound / honest)
    reason = f"{A}.ipynb is a symbolic link to /etc/shadow: {REFUSED}"
    assert errors(lines) == [refusal(who.li, entry, reason)]


# -- others' files ---------------------------------------------------------------------

def test_a_hard_link_to_another_students_file_is_refused(ex, who):
    victim = make_entry(ex, who.sofia, marker="sofia's answer")

    def extra(folder):
        os.unlink(folder / f"{A}.ipynb")
        os.link(ex.inbound / victim / f"{A}.ipynb", folder / f"{A}.ipynb")
    extra.keep_owner = f"{A}.ipynb"
    copier = make_entry(ex, who.carl, extra=extra)
    assert os.lstat(ex.inbound / copier / f"{A}.ipynb").st_uid == who.sofia.uid
    lines = collect(ex)
    assert submitted(ex) == {who.sofia.name: notebook("sofia's answer")}
    reason = (f"{A}.ipynb belongs to {who.sofia.name}, not {who.carl.name}: a submission "
              "holds only its student's own files")
    assert errors(lines) == [refusal(who.carl, copier, reason)]


def test_a_file_owned_by_someone_else_is_refused(ex, who):
    def extra(folder):
        (folder / "from-root.txt").write_text("a copy root made")
    extra.keep_owner = "from-root.txt"
    entry = make_entry(ex, who.carl, extra=extra)
    lines = collect(ex)
    assert submitted(ex) == {} and all_files(ex) == []
    reason = (f"from-root.txt belongs to root, not {who.carl.name}: a submission holds only "
              "its student's own files")
    assert errors(lines) == [refusal(who.carl, entry, reason)]


# -- limits ----------------------------------------------------------------------------

def _many(folder):
    for i in range(25):
        (folder / f"f{i:02}.txt").write_text("x")


def _large(folder):
    with open(folder / "big.bin", "wb") as f:
        f.truncate(2 * 2 ** 20)


def _deep(folder):
    path = folder
    for i in range(4):
        path = path / f"d{i}"
        path.mkdir(mode=0o770)


@pytest.mark.parametrize("extra, reason", [
    (_many, "the folder holds more than 20 files and folders (in .)"),
    (_large, "it holds more than 1.0 MiB (stopped at big.bin)"),
    (_deep, "d0/d1/d2/d3 is nested 4 folders deep (3 allowed)"),
], ids=["too-many-files", "too-large", "too-deep"])
def test_a_submission_over_the_limits_is_refused(ex, who, extra, reason):
    entry = make_entry(ex, who.sofia, extra=extra)
    lines = collect(ex, limits={"max_entries": 20, "max_bytes": 2 ** 20, "max_depth": 3})
    assert submitted(ex) == {} and all_files(ex) == []
    assert errors(lines) == [refusal(who.sofia, entry, reason)]


# -- the refusals file and the configuration ---------------------------------------------

def test_a_refusal_leaves_the_record_once_the_entry_is_gone(ex, who):
    forged = make_entry(ex, who.carl, named=who.sofia.name)
    collect(ex)
    collect(ex)
    assert [r[1] for r in recorded(ex)] == [forged]  # once, not once per collect
    # The class report (python -m convgrader.batch report) names it for the instructor.
    from convgrader.tools.class_status import refused_at_collect
    assert refused_at_collect(ex.course) == [
        f"REFUSED at collect {A} {forged} (owned by {who.carl.name}, named for "
        f"{who.sofia.name}): {recorded(ex)[0][4]}"]
    assert refused_at_collect(ex.course, ["another_assignment"]) == []
    fs.remove_tree(ex.inbound / forged)
    collect(ex)
    assert recorded(ex) == []


def test_the_course_and_machine_configs_select_the_trusted_collect():
    from nbgrader.exchange import ExchangeFactory
    from traitlets.config.loader import PyFileConfigLoader

    from convgrader.collect import TrustedCollect
    from convgrader.exchange import student_config
    course = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE_ROOT)).load_config()
    assert ExchangeFactory(config=course).collect is TrustedCollect
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "nbgrader_config.py").write_text(student_config("/srv/x"))
        machine = PyFileConfigLoader("nbgrader_config.py", path=folder).load_config()
    assert ExchangeFactory(config=machine).collect is TrustedCollect


# -- the inbound folder ----------------------------------------------------------------

RENAME = "import os, sys; os.rename(sys.argv[1], sys.argv[2])"


def test_no_student_renames_anothers_submission_once_inbound_is_sticky(ex, who):
    """nbgrader makes inbound 2733: a student who learned the name of another's entry could
    rename it, which gives it a later ctime (late) or another's name (refused). Collect
    makes it sticky (and `make exchange` creates it so)."""
    entry = make_entry(ex, who.sofia)
    lines = collect(ex)
    assert stat.S_IMODE(ex.inbound.stat().st_mode) == 0o3733
    assert f"[WARNING] {ex.inbound} was not sticky: a student who learned the name of " \
           "another's submission could rename it. It is now (mode 3733)." in lines
    moved = users.run_as(who.carl, [sys.executable, "-c", RENAME, ex.inbound / entry,
                                    ex.inbound / f"{who.carl.name}+{A}+x+y"], cwd="/")
    assert moved.returncode != 0 and "PermissionError" in moved.stderr
    assert os.listdir(ex.inbound) == [entry]


def test_make_exchange_creates_a_sticky_inbound_folder_for_the_instructor(ex):
    from convgrader.exchange import setup
    instructor = users.ordinary_user()
    root = ex.base / "new-exchange"
    setup(root, ex.base / "etc", instructor=instructor.name)
    inbound = (root / COURSE_ID / "inbound").stat()
    assert (inbound.st_uid, inbound.st_gid, stat.S_IMODE(inbound.st_mode)) == \
        (instructor.uid, instructor.gid, 0o3733)
