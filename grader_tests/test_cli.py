"""The grader's one command line, `convgrader` (convgrader/cli.py): its subcommands are
documented, each answers --help, and each runs its module's main() with the rest of the line."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convgrader import cli
from convgrader.errors import GraderError

CHECKOUT = Path(__file__).resolve().parent.parent
SUBCOMMANDS = [*cli.DELEGATED, *cli.OWN]


def convgrader(*args, cwd):
    """``python -m convgrader ARGS`` in ``cwd``, on this checkout's code, its help unwrapped
    (argparse wraps at COLUMNS, and would part "convcourse-sandbox" at its hyphen)."""
    env = {**os.environ, "COLUMNS": "300", "PYTHONPATH": os.pathsep.join(
        [str(CHECKOUT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "convgrader", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_help_names_every_subcommand_with_what_it_does(tmp_path):
    result = convgrader("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # the columns' spaces, once
    for name in SUBCOMMANDS:
        help_text = cli.DELEGATED[name][1] if name in cli.DELEGATED else cli.OWN[name]
        assert f"{name} {' '.join(help_text.split())}" in text, name


def test_no_subcommand_is_an_error_that_shows_the_usage(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main([])
    assert stopped.value.code == 2
    assert "usage: convgrader" in capsys.readouterr().err


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_answers_help_with_its_own_usage(name, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main([name, "--help"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: convgrader {name} ")


def test_grade_table_prints_the_table_of_an_nbgrader_export(tmp_path):
    # The columns of `nbgrader export`'s CSV that the table reads, and a row with no student
    # (nbgrader's for an assignment nobody submitted), which it leaves out.
    (tmp_path / "grades.csv").write_text(
        "assignment,student_id,score,max_score\n"
        "01_a,alice,3.0,4.0\n01_a,bob,4.0,4.0\n02_b,alice,1.5,2.0\n02_b,,0.0,2.0\n")
    result = convgrader("grade-table", "grades.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows == [["01_a", "02_b", "total"],
                    ["student_id"],
                    ["alice", "3/4", "1.5/2", "4.5/6"],
                    ["bob", "4/4", "-", "4/4"]]


def test_a_failure_someone_must_act_on_is_one_line_with_what_to_do(monkeypatch, capsys):
    def refuse():
        raise GraderError("no sandbox here", fix="Install bubblewrap.")
    monkeypatch.setattr(cli, "install_kernelspecs", refuse)
    assert cli.main(["kernelspec"]) == 1
    assert capsys.readouterr().err == "convgrader: no sandbox here. Install bubblewrap.\n"
