"""The sandbox's tests once more as an ordinary user, when the session runs as root.

An ordinary user builds the sandbox with unprivileged user namespaces and gets the limits
such a user has (a delegated cgroup v2, else rlimits: on these cgroup v1 machines, rlimits);
root gets root's cgroups. Both must hold everything test_sandbox asks: no network, no view of
the course, a fork bomb bounded, nothing left for the next kernel, time limits."""
import os
import re
import stat
import subprocess
import sys

import pytest

import users
from course_copies import COURSE_ROOT

pytestmark = pytest.mark.grading


def test_the_sandbox_holds_for_an_ordinary_user():
    if os.geteuid() != 0:
        pytest.skip("this session runs as an ordinary user: test_sandbox itself is that run")
    result = users.run_as(
        users.ordinary_user(),
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
         "-rs", "grader_tests/test_sandbox.py"],
        cwd=COURSE_ROOT, env={"CI": "true"})  # as in CI: no sandbox would fail, not skip
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    # Only root's cgroup v1 test is skipped.
    assert re.fullmatch(r"\d+ passed, 1 skipped in .*", summary), result.stdout[-3000:]
    assert "SKIPPED [1] grader_tests/test_sandbox.py" in result.stdout and \
        "cgroup v1 needs root here" in result.stdout


# A kernel plants a setuid copy of python in its folder and opens the folder to everyone;
# it prints the copy's path, and stays alive until the test says.
PLANT = """
import os, shutil, sys, tempfile
sys.path.insert(0, "grader_tests")
from grading_kernels import live_kernel
code = '''import os, shutil, sys
shutil.copy(os.path.realpath(sys.executable), 'python')
os.chmod('python', 0o6755)
os.chmod('.', 0o777)
os.chmod('..', 0o777)
print(os.path.abspath('python'))'''
folder = tempfile.mkdtemp()
with live_kernel(folder) as (execute, pid):
    print(execute(code).strip().splitlines()[-1], flush=True)
    sys.stdin.readline()
"""

WHO_AM_I = "import os; print(os.geteuid(), os.getegid())"


@pytest.mark.parametrize("grader", ["root", "ordinary user"])
def test_a_setuid_file_a_kernel_plants_is_out_of_other_users_reach(grader):
    """While the kernel is alive, another local account (a student with a shell on the
    exchange's machine, say) runs the setuid copy of python the kernel left in its folder:
    it cannot reach it, whoever grades."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the grader and a second account are other users")
    other, = users.other_users(["convcourse-other"])
    command = [sys.executable, "-c", PLANT]
    if grader == "root":
        planting = subprocess.Popen(command, cwd=COURSE_ROOT, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True,
                                    env=dict(os.environ, PYTHONPATH=str(COURSE_ROOT)))
    else:
        planting = users.popen_as(users.ordinary_user(), command, cwd=COURSE_ROOT,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        planted = planting.stdout.readline().strip()
        assert planted.endswith("/python"), planted
        # It is there, setuid, as the kernel left it: only the way to it is closed.
        assert os.stat(planted).st_mode & stat.S_ISUID
        # Through a shell: setpriv itself finds the program it runs with root's rights.
        ran = users.run_as(other, ["/bin/sh", "-c", 'exec "$0" -c "$1"', planted, WHO_AM_I],
                           cwd="/")
        assert ran.returncode != 0 and "Permission denied" in ran.stderr, ran
        listed = users.run_as(other, ["ls", os.path.dirname(os.path.dirname(planted))], cwd="/")
        assert listed.returncode != 0, listed
    finally:
        planting.communicate("done\n", timeout=60)
    assert planting.returncode == 0
