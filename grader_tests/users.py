"""An ordinary (non-root) user for the tests that show the course works without root.

Students and most instructors are not root, and several things differ for them: a venv
built from a Python under root's home cannot be run, bubblewrap's namespaces are made
differently, files under pytest's temporary root (/tmp/pytest-of-root, mode 700) cannot be
read. Tests that run a command as such a user use this module:

    user = users.ordinary_user()              # as root: convcourse-instructor, created once
    with users.temporary_folder(user) as folder:
        ...                                   # copy files in, then users.give(user, folder)
        users.run_as(user, [sys.executable, "-m", "nbgrader", ...], cwd=folder)

Run as root (CI), commands run as ``NAME``, a user the tests create with ``useradd``; run as
anyone else, they run as that user, directly. Tests that need several users (students of the
exchange, test_exchange.py) ask ``other_users(names)``: created as root, skipped otherwise.
"""
import functools
import os
import pwd
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from course_copies import SESSION_MARK

NAME = "convcourse-instructor"
# The venv's bin/ (not resolved: .venv/bin/python is a link to the system's python).
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: Path


def _user(entry):
    return User(entry.pw_name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


class CannotCreate(Exception):
    """A user could not be created (not root, or useradd failed)."""


def account(name, private_home=False):
    """The Linux user ``name``, created as root with its own group and home (``useradd
    --create-home --user-group``) when it does not exist yet. ``private_home``: the home is
    made mode 700 (Debian's useradd makes it 755 unless login.defs sets HOME_MODE), as a
    student's should be. Raises CannotCreate when the user is missing and cannot be made."""
    try:
        user = _user(pwd.getpwnam(name))
    except KeyError:
        if os.geteuid() != 0:
            raise CannotCreate(f"there is no user {name}, and only root can create it")
        for _ in range(50):
            made = subprocess.run(["useradd", "--create-home", "--user-group", "--shell",
                                   "/bin/sh", name], capture_output=True, text=True)
            if made.returncode != 10:  # 10: /etc/passwd was locked (another useradd): again
                break
            time.sleep(0.1)
        try:  # another test session may have made it at the same time (useradd exits 9)
            user = _user(pwd.getpwnam(name))
        except KeyError:
            raise CannotCreate(f"cannot create the user {name}: useradd: "
                               f"{made.stderr.strip() or made.returncode}") from None
    if private_home and os.geteuid() == 0 and user.home.is_dir():
        os.chmod(user.home, 0o700)
    return user


def check_can_run_python(user):
    """Fail, saying how to fix it, when ``user`` cannot run the venv's python: a venv made
    from a Python under a private folder (root's pyenv is mode 700) works for root only."""
    probe = run_as(user, [sys.executable, "-c", "pass"], cwd="/")
    if probe.returncode != 0:
        pytest.fail(f"{user.name} cannot run {sys.executable} (-> "
                    f"{os.path.realpath(sys.executable)}): {probe.stderr.strip()}. Rebuild the "
                    f"venv from a Python every user can run: rm -rf .venv && make install")


@functools.cache
def ordinary_user():
    """The ordinary user that tests run commands as, checked able to run the venv's python.

    Not root: the current user. Root: ``NAME``, created with its home (``useradd
    --create-home``) when it does not exist yet; the test is skipped when it cannot be.
    """
    if os.geteuid() != 0:
        return _user(pwd.getpwuid(os.geteuid()))
    try:
        user = account(NAME)
    except CannotCreate as error:
        pytest.skip(f"ordinary user for this test: {error}")
    check_can_run_python(user)
    return user


def other_users(names):
    """Users other than the one running the tests (students, say), each with a private home:
    created as root when missing; the test is skipped when they cannot be (not root: an
    ordinary user cannot run commands as another)."""
    if os.geteuid() != 0:
        pytest.skip(f"running commands as {', '.join(names)} needs root (the tests create them)")
    try:
        found = [account(name, private_home=True) for name in names]
    except CannotCreate as error:
        pytest.skip(str(error))
    for user in found:
        check_can_run_python(user)
    return found


def command_as(user, command):
    """``command`` as run by ``user``: through setpriv when we are root (no PAM session, no
    shell; the command's pid is setpriv's, so signals and time-outs reach it), as is when
    we already are that user."""
    command = [str(part) for part in command]
    if os.geteuid() == user.uid:
        return command
    return ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", "--",
            *command]


def environment(user, extra=None):
    """A clean environment for ``user``'s commands: their home, the venv's bin/ first on
    PATH (nbgrader runs alembic from it), UTF-8, and nothing of the test process's own
    environment but the test session's mark (conftest checks, by it, that no process the
    tests started outlives them); ``extra`` adds or overrides variables."""
    env = {"HOME": str(user.home), "USER": user.name, "LOGNAME": user.name,
           "PATH": f"{VENV_BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
           "LANG": "C.UTF-8"}
    if SESSION_MARK in os.environ:
        env[SESSION_MARK] = os.environ[SESSION_MARK]
    env.update(extra or {})
    return env


def popen_as(user, command, cwd, env=None, **kwargs):
    """Start ``command`` as ``user`` in ``cwd`` (subprocess.Popen); ``env`` as in
    ``environment``."""
    return subprocess.Popen(command_as(user, command), cwd=cwd, env=environment(user, env),
                            **kwargs)


def run_as(user, command, cwd, env=None, timeout=None):
    """Run ``command`` as ``user`` in ``cwd`` and return it finished, its output as text."""
    return subprocess.run(command_as(user, command), cwd=cwd, env=environment(user, env),
                          capture_output=True, text=True, timeout=timeout)


def give(user, path):
    """Make ``user`` the owner of ``path`` and everything in it (links themselves, never
    what they point to), e.g. files the test process copied in. Nothing to do unless root."""
    if os.geteuid() == user.uid:
        return
    os.lchown(path, user.uid, user.gid)
    for folder, folders, files in os.walk(path):
        for name in folders + files:
            os.lchown(os.path.join(folder, name), user.uid, user.gid)


@contextmanager
def temporary_folder(user, prefix="convcourse-test-"):
    """A new folder in the system's temporary folder, owned by ``user`` (mode 700), removed
    afterwards with whatever the user left in it. Not under pytest's tmp_path: as root that
    is /tmp/pytest-of-root, which no other user can enter."""
    from convgrader import fs  # removes trees however deep, and folders the user locked
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        give(user, folder)
        yield folder
    finally:
        fs.remove_tree(folder)
