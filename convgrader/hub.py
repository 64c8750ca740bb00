"""The course on a JupyterHub of its own (`sudo make hub`): students and graders log in with
their Linux accounts, the formgrader runs once, as a hub service under a grader account.

    sudo make hub INSTRUCTORS=ada GRADERS="tom tia" HUB_STUDENTS_GROUP=conv-students
                                # python -m convgrader.hub run
    python -m convgrader.hub setup      # the setup alone (accounts, folders, the exchange)

``run`` does ``setup`` and then runs JupyterHub in the foreground with
deploy/hub/jupyterhub_config.py, which reads its parameters from the environment
(``Settings``; the Makefile's variables set them). What ``setup`` does, as root, each time
(it changes nothing that is already right):

- the hub's state folder (``CONVCOURSE_HUB_STATE``, /srv/convcourse-hub), root's, mode 700:
  JupyterHub's SQLite database and cookie secret, never in the course's folder;
- the grader account (``CONVCOURSE_HUB_GRADER``, convcourse-grader), a system account with
  a home and no login shell: the formgrader runs as it, an ordinary user, so its autograde
  uses the course's sandbox as any instructor's does (user namespaces, rlimits);
- the grader's course copy (``CONVCOURSE_HUB_COURSE``, ~convcourse-grader/conv-basics): the
  course's nbgrader_config.py and source/, made once, the grader's, mode 700; the
  gradebook, submitted/, autograded/ and feedback/ grow there;
- the exchange (``convgrader.exchange.setup``, as `make exchange`), its course folder and
  inbound/ the grader account's: it releases, collects and returns feedback.

Who may log in: the students (``CONVCOURSE_HUB_STUDENTS`` by name and/or the Linux group
``CONVCOURSE_HUB_STUDENTS_GROUP``), the instructors and the teaching assistants
(``CONVCOURSE_HUB_INSTRUCTORS``, ``CONVCOURSE_HUB_GRADERS``), who alone are in the hub group
``formgrade-<course id>`` that reaches the formgrader, and the hub's administrators
(``CONVCOURSE_HUB_ADMINS``).
"""
import argparse
import contextlib
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from convcourse.exchange import COURSE_ID
from convgrader import exchange, fs
from convgrader.errors import GraderError

COURSE_ROOT = Path(__file__).resolve().parent.parent
HUB_FOLDER = COURSE_ROOT / "deploy" / "hub"
CONFIG_FILE = HUB_FOLDER / "jupyterhub_config.py"
# JupyterLab's settings for every user's own server: the Assignments tab and Validate, none of
# the instructor's tools (the formgrader, Create Assignment, the course list).
USER_JUPYTER_CONFIG = HUB_FOLDER / "user-jupyter-config"
PROXY = HUB_FOLDER / "node_modules" / ".bin" / "configurable-http-proxy"
VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's, not the system's Python
GRADER_ACCOUNT = "convcourse-grader"
STATE_MODE = 0o700


def _names(value: str | None) -> list[str]:
    return sorted(set((value or "").replace(",", " ").split()))


@dataclass(frozen=True)
class Settings:
    """The hub's parameters, from the environment (each default in brackets)."""
    port: int  # CONVCOURSE_HUB_PORT [8000]: where users reach the hub, on 127.0.0.1
    proxy_api_port: int  # CONVCOURSE_HUB_PROXY_API_PORT [port + 1]
    hub_api_port: int  # CONVCOURSE_HUB_API_PORT [port + 2]
    service_port: int  # CONVCOURSE_HUB_SERVICE_PORT [port + 3]: the formgrader
    state: Path  # CONVCOURSE_HUB_STATE [/srv/convcourse-hub]
    grader: str  # CONVCOURSE_HUB_GRADER [convcourse-grader]
    course: Path  # CONVCOURSE_HUB_COURSE [<the grader's home>/conv-basics]
    exchange: Path  # CONVCOURSE_EXCHANGE [/srv/nbgrader/exchange]
    exchange_config: Path  # CONVCOURSE_HUB_EXCHANGE_CONFIG [/etc/jupyter]
    instructors: tuple[str, ...]  # CONVCOURSE_HUB_INSTRUCTORS: user names, by spaces or commas
    graders: tuple[str, ...]  # CONVCOURSE_HUB_GRADERS: the teaching assistants
    students: tuple[str, ...]  # CONVCOURSE_HUB_STUDENTS
    students_group: str  # CONVCOURSE_HUB_STUDENTS_GROUP: a Linux group, all its members
    admins: tuple[str, ...]  # CONVCOURSE_HUB_ADMINS: JupyterHub's administrators
    course_id: str = COURSE_ID

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        port = int(env.get("CONVCOURSE_HUB_PORT") or 8000)
        grader = env.get("CONVCOURSE_HUB_GRADER") or GRADER_ACCOUNT
        return cls(
            port=port,
            proxy_api_port=int(env.get("CONVCOURSE_HUB_PROXY_API_PORT") or port + 1),
            hub_api_port=int(env.get("CONVCOURSE_HUB_API_PORT") or port + 2),
            service_port=int(env.get("CONVCOURSE_HUB_SERVICE_PORT") or port + 3),
            state=Path(env.get("CONVCOURSE_HUB_STATE") or "/srv/convcourse-hub"),
            grader=grader,
            course=Path(env.get("CONVCOURSE_HUB_COURSE") or _home(grader) / COURSE_ID),
            exchange=Path(env.get("CONVCOURSE_EXCHANGE") or exchange.DEFAULT_ROOT),
            exchange_config=Path(env.get("CONVCOURSE_HUB_EXCHANGE_CONFIG")
                                 or exchange.SYSTEM_CONFIG_DIR),
            instructors=tuple(_names(env.get("CONVCOURSE_HUB_INSTRUCTORS"))),
            graders=tuple(_names(env.get("CONVCOURSE_HUB_GRADERS"))),
            students=tuple(_names(env.get("CONVCOURSE_HUB_STUDENTS"))),
            students_group=env.get("CONVCOURSE_HUB_STUDENTS_GROUP") or "",
            admins=tuple(_names(env.get("CONVCOURSE_HUB_ADMINS"))),
        )

    @property
    def staff(self) -> list[str]:
        """Who reaches the formgrader: the instructors and the teaching assistants."""
        return sorted(set(self.instructors) | set(self.graders))

    @property
    def formgrade_group(self) -> str:
        """The hub group of the course's graders (nbgrader's course list looks for the
        prefix formgrade-)."""
        return f"formgrade-{self.course_id}"

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"


def _home(name: str) -> Path:
    try:
        return Path(pwd.getpwnam(name).pw_dir)
    except KeyError:  # setup creates the account with this home
        return Path("/var/lib") / name


class SetupFailed(GraderError):
    """The hub cannot start: the message says what to do."""


def setup(settings: Settings) -> list[str]:
    """Make the state folder, the grader account, its course copy and the exchange; return
    the problems that do not stop the hub (users named that do not exist) as lines."""
    if os.geteuid() != 0:
        raise SetupFailed("the hub logs users in with PAM and starts their servers as them, "
                          "which needs root: ask an administrator to run 'sudo make hub'")
    if not os.access(PROXY, os.X_OK):
        raise SetupFailed(f"{PROXY} is missing: run 'make hub-proxy' (npm ci in {HUB_FOLDER})")
    settings.state.mkdir(mode=STATE_MODE, parents=True, exist_ok=True)
    os.chown(settings.state, 0, 0)
    os.chmod(settings.state, STATE_MODE)
    grader = grader_account(settings.grader)
    _check_can_run_python(grader)
    try:
        exchange.setup(settings.exchange, settings.exchange_config, instructor=grader.pw_name,
                       course_id=settings.course_id)
    except PermissionError as error:
        raise SetupFailed(f"{error}. The hub's formgrader runs as {grader.pw_name}, who must own "
                          "the course's folder in the exchange (or name its owner in "
                          "GRADER_ACCOUNT=...)") from None
    course_copy(settings.course, grader)
    prune_formgrade_group(settings)
    missing = [name for name in (*settings.staff, *settings.students, *settings.admins)
               if not _exists(name)]
    return [f"no Linux user {name}: they cannot log in until the account exists"
            for name in missing]


def grader_account(name: str) -> pwd.struct_passwd:
    """The grader account ``name`` (pwd entry), created as a system account with its own
    group, a home under /var/lib and no login shell when missing."""
    if not _exists(name):
        made = subprocess.run(["useradd", "--system", "--user-group", "--create-home",
                               "--home-dir", str(_home(name)), "--shell", "/usr/sbin/nologin",
                               name], capture_output=True, text=True)
        if made.returncode != 0 and not _exists(name):
            raise SetupFailed(f"cannot create the grader account {name}: {made.stderr.strip()}")
    account = pwd.getpwnam(name)
    if account.pw_uid == 0:
        raise SetupFailed(f"the grader account {name} is root: the formgrader must run as an "
                          "ordinary user, so that student code it grades is sandboxed as one")
    home = Path(account.pw_dir)
    if not home.is_dir():
        home.mkdir(mode=0o700, parents=True)
        os.chown(home, account.pw_uid, account.pw_gid)
    if home.stat().st_uid == account.pw_uid:
        os.chmod(home, 0o700)  # useradd makes it 755; the formgrader's runtime files are there
    return account


def course_copy(course: Path | str, grader: pwd.struct_passwd) -> Path:
    """The grader's course folder: nbgrader_config.py and source/ copied from this course the
    first time, the grader's, mode 700; an existing one is left as it is (it holds the
    gradebook and the submissions) once checked to be the grader's."""
    course = Path(course)
    if course.exists():
        if course.is_symlink() or course.lstat().st_uid != grader.pw_uid:
            raise SetupFailed(f"{course} exists and is not {grader.pw_name}'s: remove it, or "
                              f"chown -R {grader.pw_name} it")
        return course
    course.mkdir(mode=0o700, parents=True)
    shutil.copy(COURSE_ROOT / "nbgrader_config.py", course)
    shutil.copytree(COURSE_ROOT / "source", course / "source")
    fs.give_tree(course, grader.pw_uid, grader.pw_gid)
    os.chmod(course, 0o700)
    return course


def prune_formgrade_group(settings: Settings) -> list[str]:
    """Take out of the hub group ``formgrade-<course id>`` whoever is no longer an instructor
    or a teaching assistant; the names taken out. JupyterHub's load_groups only adds members
    (a TA dropped from GRADERS would keep the formgrader), so this runs before it starts."""
    database = settings.state / "jupyterhub.sqlite"
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'user_group_map'").fetchone():
            return []
        members = db.execute(
            "SELECT users.id, users.name FROM users JOIN user_group_map ON users.id = user_id "
            "JOIN groups ON groups.id = group_id WHERE groups.name = ?",
            (settings.formgrade_group,)).fetchall()
        gone = [(uid, name) for uid, name in members if name not in settings.staff]
        db.executemany("DELETE FROM user_group_map WHERE user_id = ? AND group_id = "
                       "(SELECT id FROM groups WHERE name = ?)",
                       [(uid, settings.formgrade_group) for uid, _ in gone])
    return sorted(name for _, name in gone)


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _check_can_run_python(account: pwd.struct_passwd) -> None:
    probe = subprocess.run(["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
                            "--init-groups", "--", str(VENV_BIN / "python"), "-c",
                            "import convgrader, jupyterhub"],
                           cwd="/", capture_output=True, text=True)
    if probe.returncode != 0:
        raise SetupFailed(f"{account.pw_name} cannot run the course's venv ({VENV_BIN}/python): "
                          f"{probe.stderr.strip()[-500:]}. Every user of the hub runs it: "
                          "rebuild it from a Python every user can run (rm -rf .venv && make "
                          "install, as the instructor), with jupyterhub in it")


def run(settings: Settings, argv: Sequence[str] = ()) -> None:
    """``setup``, then JupyterHub in the foreground (this process becomes it)."""
    for line in setup(settings):
        print(f"make hub: {line}", file=sys.stderr)
    jupyterhub = VENV_BIN / "jupyterhub"
    print(f"JupyterHub on http://127.0.0.1:{settings.port}/ (state {settings.state}, formgrader "
          f"as {settings.grader} in {settings.course}); Ctrl-C stops it", flush=True)
    os.chdir(settings.state)
    # Started in the background by a shell, the hub would pass SIGINT ignored on to the
    # formgrader, which JupyterHub stops with SIGINT first (and waits for).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execv(jupyterhub, [str(jupyterhub), "-f", str(CONFIG_FILE), *argv])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help="as root: the state folder, the grader account, its "
                                      "course copy, the exchange")
    r = commands.add_parser("run", help="setup, then JupyterHub in the foreground")
    r.add_argument("jupyterhub_args", nargs=argparse.REMAINDER,
                   help="passed on to jupyterhub (e.g. --debug)")
    args = parser.parse_args(argv)
    settings = Settings.from_environment()
    try:
        if args.command == "setup":
            for line in setup(settings):
                print(line, file=sys.stderr)
            print(f"hub state {settings.state}; grader {settings.grader}, course {settings.course}; "
                  f"exchange {settings.exchange}")
        else:
            run(settings, args.jupyterhub_args)
    except SetupFailed as error:
        print(f"cannot start the hub: {error}.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
