"""Test cells judged in the grader: the student's kernel only runs the student's functions.

During grading a test cell never reaches the student's kernel. The grader runs it in its
own process with each of the student's functions replaced by a stand-in that sends the
call's arguments to the kernel (``convgrader.kernels.inside.calls``) and brings back a
record of what the function returned (``convcourse.records.Reported``). The test cell's own code,
its inputs' construction and its expected values (PyTorch's layers) run here, where
student code cannot patch them, and where the hidden tests' source stays.

A notebook is graded in three steps (``GuardedExecute`` in ``convgrader.grading``):
every other code cell runs in the kernel first, in order, as stock nbgrader runs it; then
the visible part of every test cell; then the hidden parts. So no student code runs after
a hidden input has reached the kernel, except the function calls the hidden checks make,
and of those the feedback shows only the grader's verdict: never their values, text or
output. Everything a kernel sends while test cells are judged is dropped.
"""
import contextlib
import io
import logging
import re
from collections.abc import Callable, Iterable
from queue import Empty
from time import monotonic
from typing import Any, Protocol

from jupyter_client import KernelClient, KernelManager
from nbclient.util import ensure_async, run_sync
from nbformat import NotebookNode

from convcourse import checks, records
from convcourse.checks import CheckFailed
from convcourse.records import Reported
from convgrader.budget import TimeBudget
from convgrader.notebooks import error_output, stream_output

# The line a kernel runs for each call: the module is imported by name in the kernel.
CALL = ("__import__('convgrader.kernels.inside.calls').kernels.inside.calls"
        ".call({name!r}, {payload!r})")

_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n(.*?)^[ \t]*### END HIDDEN TESTS[^\n]*\n?",
                     re.MULTILINE | re.DOTALL)


def split_hidden(source: str) -> tuple[str, str]:
    """(visible part, hidden part) of a test cell's source."""
    return _HIDDEN.sub("", source), "\n".join(_HIDDEN.findall(source))


class Verdict:
    """What the grader concluded about one test cell: the checks that passed, the reason
    the cell failed (None if it passed), and what the test's own code printed."""

    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failure: str | None = None
        self.printed = ""

    def outputs(self) -> list[NotebookNode]:
        """The cell's outputs in feedback: the grader's words only."""
        lines = [f"  passed: {what}" for what in self.passed]
        if self.failure:
            lines.append(f"  FAILED: {self.failure.splitlines()[0]}")
        outputs = [stream_output(self.printed)] if self.printed else []
        outputs.append(stream_output("Grader's checks:\n" + "\n".join(lines) + "\n"))
        if self.failure:
            outputs.append(error_output("CheckFailed", self.failure))
        return outputs


class Client(Protocol):
    """What the judge uses of the running nbclient ``NotebookClient`` it calls through
    (``grading.GuardedExecute``, which this module cannot import: it imports this one)."""

    kc: KernelClient
    km: KernelManager

    async def reconnect(self) -> None: ...


class KernelCalls:
    """Calls of the student's functions, made in the kernel of ``client`` (a running
    nbclient ``NotebookClient``: its kernel client and manager, and its ``reconnect``) on
    behalf of test cells run here, within the notebook's time ``budget``
    (``convgrader.budget.TimeBudget``)."""

    def __init__(self, client: Client, log: logging.Logger, budget: TimeBudget) -> None:
        self.client, self.log, self.budget = client, log, budget
        self.stopped: str | None = None  # why the kernel can run no more calls
        self.detailed: bool = True
        self.part_deadline: float | None = None

    def stand_ins(self, names: Iterable[str]) -> dict[str, Callable[..., Reported]]:
        return {name: self._stand_in(name) for name in names}

    def _stand_in(self, name: str) -> Callable[..., Reported]:
        def student_function(*args: Any, **kwargs: Any) -> Reported:
            return self.call(name, args, kwargs)
        student_function.__name__ = student_function.__qualname__ = name
        return student_function

    def run(self, source: str, namespace: dict[str, Any], verdict: Verdict,
            detailed: bool) -> None:
        """Run one part of a test cell here, recording its checks in ``verdict``."""
        self.detailed = detailed
        self.part_deadline = self.budget.part_deadline()
        printed = io.StringIO()
        try:
            with checks.recording() as checked, contextlib.redirect_stdout(printed):
                exec(compile(source, "<test cell>", "exec"), namespace)
        except CheckFailed as failure:
            verdict.failure = str(failure)
            if checked:  # the check that failed
                checked.pop()
        except Exception as error:
            self.log.error("The grader could not run a test cell: %r", error)
            verdict.failure = (f"The grader could not run this test cell ({type(error).__name__}"
                               f": {error}); please tell your instructor.")
        finally:
            verdict.printed += printed.getvalue()
        verdict.passed += checked

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Reported:
        if self.stopped:
            return Reported.failure(records.STOPPED, f"could not run: {self.stopped}")
        code = CALL.format(name=name, payload=records.encode_call(args, kwargs))
        return run_sync(self._call_in_kernel)(code)

    async def _call_in_kernel(self, code: str) -> Reported:
        """What the kernel reported, or the grader's own word when nothing usable came."""
        kc = self.client.kc
        # silent: no execution count, no history (In, Out), no pre/post_run_cell hooks.
        msg_id = kc.execute(code, silent=True, store_history=False, allow_stdin=False,
                            stop_on_error=False)
        # Set: ``run`` sets it before the test code it runs makes any call.
        record, finished = await self._results(
            msg_id, self.part_deadline)  # type: ignore[arg-type]
        if finished and record is not None:
            return Reported(record, detailed=self.detailed)
        if finished:
            return Reported.failure(records.NO_RESULT, "sent no result to the grader.")
        if self.stopped:
            return Reported.failure(records.STOPPED, "could not finish: " + self.stopped)
        self.log.warning("A test call ran past its time limit: interrupting the kernel")
        await ensure_async(self.client.km.interrupt_kernel())
        _, finished = await self._results(msg_id, self.budget.grace_deadline())
        if not finished and await self._answers_after_reconnecting():
            return Reported.failure(records.NO_RESULT, "sent no result to the grader (its output "
                                                 "never arrived whole, or it ran too long).")
        if not finished:
            self._stop("the kernel ran past the time limit in an earlier check and did not "
                       "stop when interrupted.")
            return Reported.failure(records.STOPPED, "ran past the time limit and the kernel did "
                                               "not stop when interrupted; later checks "
                                               "could not run.")
        return Reported.failure(records.TIMEOUT, f"ran longer than the time limit of "
                                                 f"{self.budget.cell or TimeBudget.DEFAULT_CELL}"
                                                 " s per test cell and was stopped.")

    async def _results(self, msg_id: str, deadline: float) -> tuple[dict[str, Any] | None, bool]:
        """(the call's observation, whether the kernel finished the call before deadline).
        Every other message, and everything but the first observation, is dropped."""
        kc, record = self.client.kc, None
        while True:
            left = deadline - monotonic()
            if left <= 0 or self.stopped:
                return record, False
            try:
                msg = await ensure_async(kc.iopub_channel.get_msg(timeout=min(left, 1.0)))
            except Empty:
                if not await ensure_async(self.client.km.is_alive()):
                    self._stop("the kernel died (did the code exit the process or run out "
                               "of memory?); later checks could not run.")
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            content = msg["content"]
            if msg["msg_type"] == "display_data" and record is None:
                record = content.get("data", {}).get(records.MIME)
            elif msg["msg_type"] == "status" and content.get("execution_state") == "idle":
                return record, True

    async def _answers_after_reconnecting(self) -> bool:
        """Whether the kernel answers a no-op on new channels (a refused message leaves
        IOPub silent, so a finished call can look like one still running)."""
        try:
            await self.client.reconnect()
        except Exception:
            return False
        msg_id = self.client.kc.execute("", silent=True, store_history=False)
        _, finished = await self._results(msg_id, self.budget.grace_deadline())
        return finished

    def _stop(self, reason: str) -> None:
        if not self.stopped:
            self.log.error("Stopping the test calls: %s", reason)
            self.stopped = reason


def judge_test_cells(cells: list[NotebookNode], calls_in_kernel: KernelCalls,
                     student_functions: Iterable[str]) -> list[Verdict]:
    """Verdicts of the test ``cells``: all visible parts first, then the hidden parts of the
    cells whose visible part passed."""
    parts = [split_hidden(cell.source) for cell in cells]
    namespaces = [calls_in_kernel.stand_ins(student_functions) for _ in cells]
    verdicts = [Verdict() for _ in cells]
    for (visible, _), namespace, verdict in zip(parts, namespaces, verdicts):
        calls_in_kernel.run(visible, namespace, verdict, detailed=True)
    for (_, hidden), namespace, verdict in zip(parts, namespaces, verdicts):
        if hidden.strip() and not verdict.failure:
            calls_in_kernel.run(hidden, namespace, verdict, detailed=False)
    return verdicts
