"""The grader's one command line: ``convgrader SUBCOMMAND ...`` (``python -m convgrader``).

Each subcommand is a module's own ``main(argv)``, given the rest of the command line as it
is: ``convgrader grade --workers 4`` is ``python -m convgrader.batch --workers 4``, and
``convgrader grade --help`` prints that module's help. Only the chosen subcommand's module
is imported, so ``convgrader --help`` answers at once, without torch or nbgrader. A failure
of the grader that someone must act on (``convgrader.errors.GraderError``) ends the command
with its one line, what to do included, and no traceback.
"""
import argparse
import contextlib
import importlib
import sys
from collections.abc import Iterator, Sequence

from convgrader.errors import GraderError

PROG = "convgrader"

# subcommand: (module whose main(argv) it runs, help). The modules' docstrings say more.
DELEGATED = {
    "grade": ("convgrader.batch",
              "autograde every submission with N workers and warm, sandboxed kernels"),
    "status": ("convgrader.tools.class_status",
               "the state of a class's grading: scores, failures and why, collect's refusals"),
    "report": ("convgrader.tools.class_report",
               "the instructor report: scores.csv, test_cells.csv and report.png"),
    "grade-table": ("convgrader.tools.grade_table",
                    "print the grade table of an `nbgrader export` CSV"),
    "benchmark": ("convgrader.tools.benchmark",
                  "stock nbgrader against the batch grader on a class built for it"),
    "sample-class": ("convgrader.tools.sample_class",
                     "build the sample class's submissions, or preview their points"),
    "kit": ("convgrader.tools.kit", "build the student kit (folder and .zip)"),
    "exchange": ("convgrader.exchange",
                 "(administrator, once) the exchange folder and students' nbgrader config"),
    "hub": ("convgrader.hub", "(administrator) JupyterHub for the course"),
}
# subcommands with nothing to pass on: their parser is this module's.
OWN = {
    "kernelspec": "install the grading kernelspecs (convcourse-warm, convcourse-sandbox)",
    "sandbox-check": "whether a grading sandbox can be built here, and with which limits",
}


def parser() -> argparse.ArgumentParser:
    """The top-level parser: it lists the subcommands, and parses the ones of this module."""
    top = argparse.ArgumentParser(
        prog=PROG, description="The course's grader and its tools, run in the course directory.",
        epilog=f"'{PROG} SUBCOMMAND --help' says more about each.")
    commands = top.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    for name, (_, text) in DELEGATED.items():
        # Listed here for --help; their arguments are their modules' (main() never parses
        # them with this parser).
        commands.add_parser(name, help=text, add_help=False)
    for name, text in OWN.items():
        commands.add_parser(name, help=text, description=text)
    return top


def install_kernelspecs() -> int:
    # Deferred as the other subcommands' modules are: it loads jupyter_client and zmq.
    from convgrader.kernels import kernelspecs
    kernelspecs.main(["install"])
    return 0


def check_sandbox() -> int:
    """What this machine allows (``python -m convgrader.sandbox``)."""
    # Deferred as the other subcommands' modules are: it loads jupyter_client and traitlets.
    from convgrader.kernels import sandbox
    return sandbox.main()


@contextlib.contextmanager
def program_name(name: str) -> Iterator[None]:
    """The modules' parsers name their program after ``sys.argv[0]``: their usage lines
    then say ``convgrader grade``, not ``__main__.py``."""
    saved = sys.argv[0]
    sys.argv[0] = f"{PROG} {name}"
    try:
        yield
    finally:
        sys.argv[0] = saved


def run(argv: list[str]) -> int | None:
    if argv and argv[0] in DELEGATED:
        name, rest = argv[0], argv[1:]
        module = importlib.import_module(DELEGATED[name][0])
        with program_name(name):
            return module.main(rest)
    args = parser().parse_args(argv)
    return install_kernelspecs() if args.command == "kernelspec" else check_sandbox()


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return run(argv) or 0
    except GraderError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
