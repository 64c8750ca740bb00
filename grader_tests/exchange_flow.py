"""nbgrader's exchange on one machine, with real accounts: release, fetch, submit, collect,
grade, feedback, each command run by the Linux user who runs it in a course.

Used by grader_tests/test_exchange.py, which asserts on every step, and by `make
demo-exchange` (``python grader_tests/exchange_flow.py``), which shows it. Both need root, to
create the accounts (``users.other_users``) and run commands as them; the commands themselves
run as ordinary users: the instructor (``users.ordinary_user()``, convcourse-instructor) and
three students, in a temporary copy of the course with a temporary exchange folder, set up as
`sudo make exchange` sets up the machine's (``convgrader.exchange.setup``, its config file in
a folder named by JUPYTER_CONFIG_PATH instead of /etc/jupyter).

    instructor  nbgrader generate_assignment 01_multi_input_channels
    instructor  nbgrader release_assignment 01_multi_input_channels
    student     nbgrader fetch_assignment 01_multi_input_channels      (in a folder of their home)
    student     (answers the notebook), nbgrader submit 01_multi_input_channels
    instructor  nbgrader collect, nbgrader db student import roster.csv,
                python -m convgrader.batch (sandboxed), nbgrader generate_feedback,
                nbgrader release_feedback, nbgrader export
    student     nbgrader fetch_feedback 01_multi_input_channels
"""
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import users  # noqa: E402
from course_copies import SAMPLE_CLASS, TEST_TIME_LIMITS, copy_course  # noqa: E402
from convcourse.exchange import COURSE_ID  # noqa: E402
from convgrader import exchange, fs  # noqa: E402
from convgrader.notebooks import read  # noqa: E402
from convgrader.tools import sample_class  # noqa: E402

ASSIGNMENT = "01_multi_input_channels"


@dataclass(frozen=True)
class Student:
    name: str  # the Linux user, and the nbgrader student id
    first_name: str
    last_name: str
    answer: str  # a sample student of grader_tests/sample_class/01_multi_input_channels
    score: float  # what the answer earns (expected.toml), out of 3


STUDENTS = (
    Student("convcourse-sofia", "Sofia", "Kovalevskaya", "notes_code", 3.0),   # the notes' code
    Student("convcourse-carl", "Carl", "Gauss", "flipped_kernel", 0.0),        # mistaken
    Student("convcourse-li", "Li", "Shanlan", "square_only", 1.0),             # partly right
)


class StepFailed(AssertionError):
    pass


@dataclass
class Step:
    user: str
    command: list
    returncode: int
    output: str
    seconds: float

    def __str__(self):
        return f"[{self.user}] {' '.join(self.command)}"


# Run as each student: every path the JSON list names, opened (files) or listed (folders);
# prints {path: "ok" or the error's name}.
PROBE = """\
import json, os, sys
seen = {}
for path in json.loads(sys.argv[1]):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").close()
        seen[path] = "ok"
    except OSError as error:
        seen[path] = type(error).__name__
print(json.dumps(seen))
"""


@dataclass
class Flow:
    """The course, the exchange and every user's folder, and the steps run so far."""
    base: Path
    instructor: users.User
    students: dict  # name -> (Student, users.User)
    log: callable = None
    steps: list = field(default_factory=list)

    @property
    def root(self):
        return self.base / "exchange"

    @property
    def config_dir(self):
        return self.base / "etc-jupyter"

    @property
    def course(self):
        return self.base / "course"

    def work(self, name):
        """The folder a student works in: in their home, new for each run."""
        return self.students[name][1].home / f"conv-basics-{self.base.name}"

    # -- the users' environments and commands --------------------------------------------

    def env(self, name):
        env = {"JUPYTER_CONFIG_PATH": str(self.config_dir), "MPLBACKEND": "Agg",
               "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        if name == self.instructor.name:
            # The course's nbgrader_config.py reads the exchange folder from here.
            env.update(TEST_TIME_LIMITS, CONVCOURSE_EXCHANGE=str(self.root))
        else:
            # nbgrader's cache of submissions (~/.local/share/jupyter) and what JupyterLab,
            # IPython and matplotlib keep in a home: in the run's folder, removed after it.
            work = self.work(name)
            env.update(JUPYTER_DATA_DIR=f"{work}/.jupyter-data", IPYTHONDIR=f"{work}/.ipython",
                       JUPYTER_CONFIG_DIR=f"{work}/.jupyter",
                       JUPYTERLAB_SETTINGS_DIR=f"{work}/.jupyterlab-settings",
                       XDG_CACHE_HOME=f"{work}/.cache", XDG_CONFIG_HOME=f"{work}/.config",
                       npm_config_cache=f"{work}/.npm")
        return env

    def user(self, name):
        return self.instructor if name == self.instructor.name else self.students[name][1]

    def cwd(self, name):
        return self.course if name == self.instructor.name else self.work(name)

    def run(self, *jobs, check=True):
        """Run each (user name, command) as that user in their folder, all at once; the
        finished Steps in order."""
        started = time.monotonic()
        running = []
        for name, command in jobs:
            if self.log:
                self.log(f"[{name}] {' '.join(map(str, command))}")
            full = [sys.executable, *command[1:]] if command[0] == "python" else \
                [sys.executable, "-m", *command]
            running.append((name, command, users.popen_as(
                self.user(name), full, cwd=self.cwd(name), env=self.env(name),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
        steps = []
        for name, command, process in running:
            output, _ = process.communicate(timeout=600)
            step = Step(name, list(map(str, command)), process.returncode, output,
                        time.monotonic() - started)
            self.steps.append(step)
            steps.append(step)
            if check and step.returncode != 0:
                raise StepFailed(f"{step} failed ({step.returncode}):\n{output[-4000:]}")
        return steps

    def instructor_runs(self, *command, check=True):
        (step,) = self.run((self.instructor.name, list(command)), check=check)
        return step

    def each_student_runs(self, *command, names=None, check=True):
        return self.run(*[(n, list(command)) for n in (names or self.students)], check=check)

    # -- the steps -----------------------------------------------------------------------

    def set_up(self):
        """As the administrator: the exchange and its config (`make exchange`); the
        instructor's course (a copy of config and source/); each student's folder."""
        exchange.setup(self.root, self.config_dir, instructor=self.instructor.name)
        copy_course(self.course)
        users.give(self.instructor, self.course)
        os.chmod(self.course, 0o700)
        for name, (_, user) in self.students.items():
            self.work(name).mkdir(mode=0o700)
            users.give(user, self.work(name))

    def answer(self, name, answer=None):
        """A student puts in their answer: the fetched notebook, filled as their sample
        student (or the sample student ``answer``) fills it."""
        student, user = self.students[name]
        path = sample_class.notebook_path(self.work(name), ASSIGNMENT)
        answer_file = SAMPLE_CLASS / ASSIGNMENT / f"{answer or student.answer}.py"
        nbformat.write(sample_class.fill(read(path), sample_class.load_answers(answer_file)),
                       str(path))
        users.give(user, path)
        return path

    def roster(self):
        """The class list the instructor imports (`nbgrader db student import`)."""
        path = self.course / "roster.csv"
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "first_name", "last_name", "email"])
            for student, _ in self.students.values():
                writer.writerow([student.name, student.first_name, student.last_name,
                                 f"{student.name}@students.example.edu"])
        users.give(self.instructor, path)
        return path

    def release(self):
        self.instructor_runs("nbgrader", "generate_assignment", ASSIGNMENT)
        self.instructor_runs("nbgrader", "release_assignment", ASSIGNMENT)

    def fetch(self, names=None):
        return self.each_student_runs("nbgrader", "fetch_assignment", ASSIGNMENT, names=names)

    def submit(self, names=None):
        for name in names or self.students:
            self.answer(name)
        return self.each_student_runs("nbgrader", "submit", ASSIGNMENT, names=names)

    def submit_as(self, name, other):
        """``name`` runs `nbgrader submit --student=<other>` on their own fetched work: a
        submission in ``other``'s name, which collect must refuse (convgrader/collect.py)."""
        (step,) = self.run((name, ["nbgrader", "submit", ASSIGNMENT, "--student", other]))
        return step

    def grade(self, workers=1):
        collected = self.instructor_runs("nbgrader", "collect", ASSIGNMENT)
        self.instructor_runs("nbgrader", "db", "student", "import", self.roster().name)
        graded = self.instructor_runs("python", "-m", "convgrader.batch", ASSIGNMENT,
                                      "--workers", str(workers))
        self.instructor_runs("nbgrader", "generate_feedback", ASSIGNMENT)
        released = self.instructor_runs("nbgrader", "release_feedback", ASSIGNMENT)
        self.instructor_runs("nbgrader", "export", "--to", "grades.csv")
        return collected, graded, released

    def fetch_feedback(self, names=None):
        return self.each_student_runs("nbgrader", "fetch_feedback", ASSIGNMENT, names=names)

    # -- what came out ---------------------------------------------------------------------

    def grades(self):
        """{student id: row of `nbgrader export`'s grades.csv}."""
        with open(self.course / "grades.csv", newline="") as f:
            return {row["student_id"]: row for row in csv.DictReader(f)}

    def feedback_files(self, name):
        """The feedback pages `nbgrader fetch_feedback` put in a student's folder."""
        return sorted((self.work(name) / ASSIGNMENT / "feedback").glob("*/*.html"))

    def submissions(self):
        """{student id: their submission's folder in the exchange's inbound/}: the one
        named for them that they own (not one another student made in their name)."""
        inbound = self.root / COURSE_ID / "inbound"
        uids = {name: user.uid for name, (_, user) in self.students.items()}
        return {p.name.split("+")[0]: p for p in inbound.iterdir()
                if uids.get(p.name.split("+")[0]) == p.lstat().st_uid}

    def released_feedback(self):
        """{student id: their feedback page in the exchange}, named as nbgrader names it."""
        from nbgrader.utils import notebook_hash
        notebook = sample_class.notebook_path(self.course / "release", ASSIGNMENT).stem
        return {name: self.root / COURSE_ID / "feedback" /
                f"{notebook_hash(secret=(path / 'submission_secret.txt').read_text(), notebook_id=notebook)}.html"
                for name, path in self.submissions().items()}

    def probe(self, name, paths):
        """{path: "ok" or the error} for ``name`` opening or listing each of ``paths``."""
        result = users.run_as(self.user(name), [sys.executable, "-I", "-c", PROBE,
                                                json.dumps([str(p) for p in paths])], cwd="/")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def close(self):
        for name in self.students:
            fs.remove_tree(self.work(name))
        fs.remove_tree(self.base)


def start(log=None):
    """The flow's folders and users (created as root when missing), nothing run yet."""
    instructor = users.ordinary_user()
    found = users.other_users([s.name for s in STUDENTS])
    base = Path(tempfile.mkdtemp(prefix="convcourse-exchange-", dir="/tmp"))
    os.chmod(base, 0o755)  # every user reaches the exchange and config in it
    flow = Flow(base, instructor, {s.name: (s, u) for s, u in zip(STUDENTS, found)}, log)
    flow.set_up()
    return flow


def demo():
    """`make demo-exchange`: the whole flow, each command shown as its user runs it."""
    if os.geteuid() != 0:
        print("make demo-exchange runs nbgrader as three student accounts it creates: ask an "
              "administrator to run 'sudo make demo-exchange'.", file=sys.stderr)
        return 1
    started = time.monotonic()
    flow = start(log=print)
    print(f"exchange {flow.root}, students' nbgrader config {flow.config_dir}, "
          f"course {flow.course} (instructor {flow.instructor.name})")
    try:
        flow.release()
        flow.fetch()
        for name in flow.students:
            print(f"[{name}] answers as grader_tests/sample_class/{ASSIGNMENT}/"
                  f"{flow.students[name][0].answer}.py")
        flow.submit()
        flow.grade(workers=min(2, os.cpu_count() or 1))
        flow.fetch_feedback()
        print("\nGrades (nbgrader export):")
        for student_id, row in flow.grades().items():
            full_name = f"{row['first_name']} {row['last_name']}"
            print(f"  {student_id:20} {full_name:22} {row['score']} / {row['max_score']}")
        print("\nFeedback each student fetched (nbgrader fetch_feedback), in their home:")
        for name in flow.students:
            for page in flow.feedback_files(name):
                score = re.search(r"\(Score: [^)]*\)", page.read_text())
                print(f"  [{name}] {page.relative_to(flow.work(name))}: "
                      f"{score.group(0) if score else 'no score in it'}")
        print("\nEach student, as their own user, tries to list inbound/ and feedback/ and to "
              "open the others' submissions, submission_secret.txt and feedback pages:")
        submissions, feedback = flow.submissions(), flow.released_feedback()
        course = flow.root / COURSE_ID
        for name in flow.students:
            others = [p for o in flow.students if o != name for p in (
                submissions[o], submissions[o] / "submission_secret.txt", feedback[o])]
            own = [submissions[name] / "submission_secret.txt", feedback[name]]
            seen = flow.probe(name, [course / "inbound", course / "feedback", *others, *own])
            refused = [p for p in [course / "inbound", course / "feedback", *others]
                       if seen[str(p)] != "ok"]
            print(f"  [{name}] refused {len(refused)} of {len(others) + 2} "
                  f"({', '.join(sorted({seen[str(p)] for p in refused}))}); reads their own "
                  f"submission and feedback: {all(seen[str(p)] == 'ok' for p in own)}")
        print(f"\nDone in {time.monotonic() - started:.0f} s; the demo's course, exchange and "
              "students' folders are removed now.")
    finally:
        flow.close()
    return 0


if __name__ == "__main__":
    sys.exit(demo())
