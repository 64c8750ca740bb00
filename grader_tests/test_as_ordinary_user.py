"""The sandbox's tests once more as an ordinary user, when the session runs as root.

An ordinary user builds the sandbox with unprivileged user namespaces and gets the limits
such a user has (a delegated cgroup v2, else rlimits: on these cgroup v1 machines, rlimits);
root gets root's cgroups. Both must hold everything test_sandbox asks: no network, no view of
the course, a fork bomb bounded, nothing left for the next kernel, time limits."""
import os
import re
import sys

import pytest

import users
from conftest import COURSE_ROOT


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
