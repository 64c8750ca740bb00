"""The grader's own errors: one base class, and what the person who runs the grader must do.

A student's mistakes are not errors here (they are failed checks, ``convcourse.checks``);
these are the grader's: a machine that cannot build the sandbox, a submission it refuses,
a fork server that stopped answering. Each says what happened, then, on its first line
still, what to do about it (``fix``), so that the line an instructor reads first in a log
or a terminal is the one to act on. The command line (``convgrader.cli``) prints that line
alone, without a traceback.
"""


class GraderError(Exception):
    """A failure of the grader, with what to do about it (``fix``) when someone must act."""

    def __init__(self, problem: object, fix: str | None = None) -> None:
        super().__init__(problem, fix)
        self.problem, self.fix = problem, fix

    def __str__(self) -> str:
        if not self.fix:
            return str(self.problem)
        return f"{str(self.problem).rstrip('. ')}. {self.fix}"


class SandboxUnavailable(GraderError):
    """No sandbox can be built here, so no student code runs."""


class KernelServerError(GraderError):
    """The fork server, or a sandbox's, did not start, answer or keep its kernel."""


class SandboxNotClean(GraderError):
    """What the last kernel left in a sandbox could not be cleared: a new sandbox is built."""


class SubmissionRefused(GraderError):
    """A submission the grader will not copy, read or run; ``str()`` is the one-line reason
    (the student's work must change, not the grader's setup)."""

    logged = False  # set once autograde has logged its line (``submissions.autograde``)
