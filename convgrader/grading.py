"""nbgrader preprocessors that make the course's grades hold against broken or hostile code.

nbgrader_config.py puts them into ``nbgrader autograde`` and ``generate_feedback``:

- ``RestoreCellRoles`` (sanitizing): nbgrader metadata is made the gradebook's again: an
  unknown grade_id (a renamed cell) is dropped, so the notebook still validates and its code
  runs as an ordinary cell; a known one gets back its role and points. Deleted test cells
  come back through nbgrader's own ``OverwriteCells.add_missing_cells``.
- ``GuardedExecute`` (executing): the notebook's cells run in the kernel, but test cells are
  judged in this process (``convgrader.judge``): the kernel only runs the student's
  functions on the tests' inputs, the grader computes what they should return, and a test
  cell's outputs are the grader's verdict. When the kernel dies, or keeps running after the
  timeout's interrupt, every later cell and check fails instead of showing no output (a
  cell without output would count as passed, nbgrader #427); output is kept by an
  allow-list and a budget of bytes and messages, per cell and per notebook
  (``convgrader.outputs``), and execution counts are the grader's own.
- ``HideTracebacks`` (feedback): errors in test cells show only their message (test cells'
  errors are the grader's own; this keeps feedback that way for notebooks graded before,
  whose test cells ran in the kernel: one stopped by the time limit says so, instead of a
  bare ``KeyboardInterrupt:`` and ``CellTimeoutError:``).
"""
import asyncio
import functools
import time
from collections import Counter
from queue import Empty
from typing import Any

from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbgrader.api import Gradebook
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer

from convgrader import judge, outputs
from convgrader.budget import TimeBudget
from convgrader.errors import GraderError
# nbgrader_config.py named the client here before it moved (c.AsyncKernelManager.client_class).
from convgrader.kernels.clients import BoundedKernelClient
from convgrader.notebooks import (error_output, is_solution, is_test, nbgrader_meta,
                                  stream_output)


class RestoreCellRoles(NbGraderPreprocessor):
    """Give every nbgrader cell back the role the gradebook records for its grade_id.

    A grade_id the gradebook does not know loses its nbgrader metadata (the cell runs as an
    ordinary cell); a known one gets its recorded role back (answer, test, task, locked),
    so a student cannot turn an answer into a graded cell or a test into an answer.
    """

    def preprocess(self, nb: NotebookNode,
                   resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            roles = {c.name: {"grade": False, "solution": False, "task": False,
                              "locked": c.locked} for c in notebook.source_cells}
            for c in notebook.solution_cells:
                roles[c.name]["solution"] = True
            for c in notebook.task_cells:
                roles[c.name]["task"] = True
            for c in notebook.grade_cells:
                roles[c.name].update(grade=True, points=c.max_score)
        for cell in nb.cells:
            meta = nbgrader_meta(cell)
            if not meta:
                continue
            role = roles.get(meta.get("grade_id"))
            if role is None:
                self.log.warning("Cell with unknown grade_id %r: graded as an ordinary cell",
                                 meta.get("grade_id"))
                del cell.metadata["nbgrader"]
                continue
            if not role["grade"]:
                meta.pop("points", None)
            meta.update(role)
        return nb, resources


def explain_timeout(outputs: list[NotebookNode], what: str,
                    seconds: float | None) -> list[NotebookNode]:
    """``outputs`` with nbclient's time-limit errors (a KeyboardInterrupt from the interrupt,
    a CellTimeoutError without a message) replaced by one error that says why."""
    if not any(o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError"
               for o in outputs):
        return outputs
    kept, explained = [], False
    for output in outputs:
        if output.get("output_type") == "error" and \
                output.get("ename") in ("CellTimeoutError", "KeyboardInterrupt"):
            if not explained:
                kept.append(error_output(
                    "CellTimeoutError", f"{what} ran longer than the time limit of {seconds} s "
                                        "and was stopped."))
                explained = True
        else:
            kept.append(output)
    return kept


class KernelStopped(GraderError):
    """The kernel can run no more cells: it died, or it ignored the timeout's interrupt."""


class GuardedExecute(Execute):
    """nbgrader's Execute, made safe against dying, stuck, flooding and patching kernels.

    The notebook's code cells run in the kernel in order, except test cells: those are
    judged afterwards in this process (``convgrader.judge``), visible parts first, then
    hidden parts, and their outputs are the grader's verdict only.
    """

    max_output_bytes = Integer(
        1_000_000, help="Bytes of output messages per cell, as they came over the wire "
                        "(data, metadata, transient, JSON structure); the rest is dropped."
    ).tag(config=True)
    max_notebook_output_bytes = Integer(
        5_000_000, help="Bytes of output messages per notebook.").tag(config=True)
    max_output_messages = Integer(
        2_000, help="Output messages per cell; the rest are dropped.").tag(config=True)
    max_notebook_output_messages = Integer(
        10_000, help="Output messages per notebook.").tag(config=True)
    interrupt_grace = Integer(
        10, help="Seconds a kernel has to become responsive after a timeout's interrupt."
    ).tag(config=True)

    notebook_timeout = Integer(
        600, help="Seconds for the whole notebook; cells that would start later fail."
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any] | None = None,
                   km: KernelManager | None = None) -> tuple[NotebookNode, dict[str, Any]]:
        # nbconvert's ExecutePreprocessor.preprocess, with the test cells judged last.
        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self._stopped: str | None = None
        # Bytes may be inf: a message whose size cannot be measured (outputs.estimated_bytes).
        self._spent_bytes: Counter[int] = Counter()
        self._spent_messages: Counter[int] = Counter()
        self._noted: set[tuple[int, str]] = set()
        self.budget = TimeBudget(self.timeout, self.notebook_timeout, self.interrupt_grace)
        # nbclient asks this hook for each cell's limit: the cell's, within the notebook's.
        self.timeout_func = self.budget.cell_limit
        tests = []
        with self.setup_kernel():
            info_msg = self.wait_for_reply(self.kc.kernel_info())
            self.nb.metadata["language_info"] = language_info(info_msg)
            for index, cell in enumerate(self.nb.cells):
                if is_test(cell):
                    tests.append(cell)
                else:
                    self.preprocess_cell(cell, resources, index)
            self._judge(tests)
        self.set_widgets_metadata()
        return self.nb, self.resources

    def _judge(self, tests: list[NotebookNode]) -> None:
        calls_in_kernel = judge.KernelCalls(self, self.log, self.budget)
        if self._stopped:
            calls_in_kernel.stopped = "the kernel had stopped before the tests (see the cell " \
                                      "where it stopped)."
        names = self._student_functions()
        for cell, verdict in zip(tests, judge.judge_test_cells(tests, calls_in_kernel, names)):
            cell.outputs = verdict.outputs()
            cell.execution_count = None

    def _student_functions(self) -> list[str]:
        """The graded functions: the grade ids of the notebook's answer cells."""
        info = self.resources.get("nbgrader") if self.resources else None
        if info and "db_url" in info:
            with Gradebook(info["db_url"]) as gb:
                notebook = gb.find_notebook(info["notebook"], info["assignment"])
                return [c.name for c in notebook.solution_cells]
        return [nbgrader_meta(c)["grade_id"] for c in self.nb.cells if is_solution(c)]

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, Any] | None,
                        index: int) -> tuple[NotebookNode, dict[str, Any] | None]:
        if cell.cell_type != "code":
            return cell, resources
        if not self._stopped and self.budget.left() <= 0:
            self._stopped = (f"The notebook ran past its time limit ({self.notebook_timeout} s); "
                             "this cell and later ones could not run.")
        if self._stopped:
            cell.outputs = [error_output("KernelStopped", self._stopped)]
            return cell, resources
        try:
            cell, resources = self._execute(cell, index), self.resources
            if any(o.get("ename") == "CellTimeoutError" for o in cell.outputs):
                self._explain_timeout(cell)
                self._check_responsive()
        except DeadKernelError:
            self._stop(cell, "The kernel died while this cell ran (did the code exit the "
                             "process or run out of memory?); later cells could not run.")
        except CellTimeoutError:
            # nbclient raises it when the cell's output stops short of its end on IOPub
            # (a message over the client's limit is refused, and what follows it is lost).
            self._output_lost(cell)
        except KernelStopped:
            self._stop(cell, "This cell ran past the time limit and the kernel did not stop "
                             "when interrupted; later cells could not run.")
        return cell, resources

    def _output_lost(self, cell: NotebookNode) -> None:
        """The cell's output did not arrive whole: it fails, and the notebook goes on if the
        kernel still answers."""
        try:
            run_sync(self.reconnect)()
            self._check_responsive()
        except KernelStopped:
            self._stop(cell, "This cell's output stopped short and the kernel no longer "
                             "answers; later cells could not run.")
            return
        cell.outputs.append(error_output(
            "OutputLost", "Part of this cell's output never reached the grader (a single "
                          "message over "
                          f"{BoundedKernelClient.MAX_RELAYED_MESSAGE_BYTES // 2 ** 20} MiB is "
                          "refused)."))

    def _explain_timeout(self, cell: NotebookNode) -> None:
        """nbclient's timeout leaves a bare KeyboardInterrupt and CellTimeoutError: say why."""
        cell.outputs = explain_timeout(cell.outputs, "This cell", self.budget.last_cell_limit)

    async def reconnect(self) -> None:
        """A new IOPub channel to the kernel. ZeroMQ drops a connection that brings a message
        over the client's limit, and the old channel stays silent after it."""
        self.kc.iopub_channel.stop()
        self.kc._iopub_channel = None  # jupyter_client makes a new one on first use
        self.kc.iopub_channel.start()
        try:  # ipykernel greets each new subscription: from then on nothing is missed
            while (await asyncio.wait_for(self.kc.iopub_channel.get_msg(),
                                          self.interrupt_grace))["msg_type"] != "iopub_welcome":
                pass
        except asyncio.TimeoutError as error:
            raise KernelStopped("the kernel did not greet a new channel") from error

    def _stop(self, cell: NotebookNode, reason: str) -> None:
        self.log.error("Stopping execution: %s", reason)
        self._stopped = reason
        cell.outputs.append(error_output("KernelStopped", reason))

    def _check_responsive(self) -> None:
        """After a timeout's interrupt, the kernel must answer a no-op within the grace time."""
        msg_id = self.kc.execute("", silent=True, store_history=False)
        if run_sync(self._reply_within)(msg_id, self.budget.grace_deadline()) is None:
            raise KernelStopped("the kernel did not answer after the interrupt")

    async def _reply_within(self, msg_id: str, deadline: float) -> dict[str, Any] | None:
        """The shell reply to ``msg_id`` if it comes before ``deadline`` (monotonic time);
        None if it does not, or the kernel died."""
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=min(left, 1.0)))
            except Empty:
                if not await ensure_async(self.km.is_alive()):
                    return None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        return None

    # ---- what the kernel sends is bounded and rebuilt before it is kept ----

    def create_kernel_manager(self) -> KernelManager:
        """The kernel manager, with a client that bounds every message (whatever the
        configuration says: the guarantees below rely on it)."""
        km = super().create_kernel_manager()
        if not issubclass(km.client_factory, BoundedKernelClient):
            km.client_class = f"{__name__}.BoundedKernelClient"
        return km

    def _execute(self, cell: NotebookNode, index: int) -> NotebookNode:
        """nbconvert's ExecutePreprocessor.preprocess_cell, with the grader's execution count
        (the kernel's is a value it chooses: a str one made the notebook invalid)."""
        self._check_assign_resources(self.resources)
        count = self.code_cells_executed + 1
        if cell.source.strip():  # nbclient skips an empty cell; one that fails keeps its count
            cell.execution_count = count
        return self.execute_cell(cell, index, execution_count=count, store_history=True)

    def process_message(self, msg: dict[str, Any], cell: NotebookNode,
                        cell_index: int) -> NotebookNode | None:
        """nbclient's, on a message rebuilt from validated values only, within the cell's and
        the notebook's budgets; a refused message is a one-line note in the cell."""
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status":  # never dropped: it ends the cell
            return super().process_message(
                {**msg, "content": {"execution_state": content["execution_state"]}},
                cell, cell_index)
        if kind == outputs.REFUSED:
            self._note(cell, cell_index, "refused", content["reason"])
            return None
        if not self._spend(cell, cell_index, outputs.estimated_bytes(msg)):
            return None
        if kind == "execute_input":  # only its timing is kept, never its execution_count
            return super().process_message({**msg, "content": {}}, cell, cell_index)
        if kind == "clear_output":
            return super().process_message({**msg, "content": {"wait": bool(content.get("wait"))}},
                                           cell, cell_index)
        if kind not in ("stream", "error", "display_data", "execute_result",
                        "update_display_data"):
            return None  # comm messages (widgets) and anything unknown
        output_type = "display_data" if kind == "update_display_data" else kind
        output, dropped = outputs.clean_output(output_type, content, self.code_cells_executed)
        if output is None:
            self._note(cell, cell_index, "malformed", f"output refused by the grader: {dropped}.")
            return None
        rebuilt = {key: value for key, value in output.items() if key != "output_type"}
        display_id = outputs.display_id(content)
        if display_id:
            rebuilt["transient"] = {"display_id": display_id}
        return super().process_message(
            {"msg_type": kind, "header": {"msg_type": kind}, "parent_header": msg["parent_header"],
             "metadata": {}, "content": rebuilt}, cell, cell_index)

    def _spend(self, cell: NotebookNode, cell_index: int, size: float) -> bool:
        """Whether one more message of ``size`` bytes (all of it, as it came over the wire)
        fits in the cell's and the notebook's budgets of bytes and messages; every message
        is counted, kept or not."""
        self._spent_bytes[cell_index] += size  # type: ignore[assignment]  # inf: see preprocess
        self._spent_messages[cell_index] += 1
        over = [what for what, spent, cell_limit, notebook_limit in [
            ("bytes", self._spent_bytes, self.max_output_bytes, self.max_notebook_output_bytes),
            ("messages", self._spent_messages, self.max_output_messages,
             self.max_notebook_output_messages)]
            if spent[cell_index] > cell_limit or sum(spent.values()) > notebook_limit]
        for what in over:
            self._note(cell, cell_index, what, self._over_budget(what))
        return not over

    def _over_budget(self, what: str) -> str:
        cell, notebook = {"bytes": (self.max_output_bytes, self.max_notebook_output_bytes),
                          "messages": (self.max_output_messages,
                                       self.max_notebook_output_messages)}[what]
        return (f"\n... output truncated by the grader: over {cell:,} {what} of output in this "
                f"cell or {notebook:,} in the notebook ...\n")

    def _note(self, cell: NotebookNode, cell_index: int, kind: str, text: str) -> None:
        """``text`` in the cell's output, once per cell and kind."""
        if (cell_index, kind) not in self._noted:
            self._noted.add((cell_index, kind))
            cell.outputs.append(stream_output(text if text.endswith("\n") else text + "\n",
                                              "stderr"))

    def on_cell_executed(self, cell: NotebookNode, cell_index: int,
                         execute_reply: dict[str, Any] | None, **kwargs: Any) -> None:
        """nbgrader's: an error reply with no matching error output (a timeout, a refused
        reply) adds one; here rebuilt from validated values, within the budget."""
        content = (execute_reply or {}).get("content", {})
        if content.get("status") != "error" or any(
                o.get("output_type") == "error" and o.get("ename") == content.get("ename")
                for o in cell.outputs):
            return
        error, _ = outputs.clean_output("error", content)
        if error is None or not self._spend(cell, cell_index, len(str(error))):
            error = error_output("ExecutionError", "The kernel reported an error this cell's "
                                                   "output does not show.")
        if error.traceback == []:
            error.traceback = ["ERROR: An error occurred while showtraceback was disabled"]
        cell.outputs.append(error)

    def handle_comm_msg(self, outs: list[NotebookNode], msg: dict[str, Any],
                        cell_index: int) -> None:
        """Widgets' messages are dropped: the course has none, and their state would be
        kept in the notebook's metadata without bound."""


LANGUAGE_INFO_KEYS = ("name", "version", "mimetype", "file_extension", "pygments_lexer",
                      "nbconvert_exporter")


def language_info(kernel_info_reply: dict[str, Any] | None) -> dict[str, Any]:
    """The notebook's language_info from the kernel's reply: short strings only."""
    info = (kernel_info_reply or {}).get("content", {}).get("language_info")
    info = info if isinstance(info, dict) else {}
    kept = {k: info[k] for k in LANGUAGE_INFO_KEYS
            if isinstance(info.get(k), str) and len(info[k]) <= 100}
    mode = info.get("codemirror_mode")
    if isinstance(mode, dict) and isinstance(mode.get("name"), str) and \
            type(mode.get("version")) is int and len(mode["name"]) <= 100:
        kept["codemirror_mode"] = {"name": mode["name"], "version": mode["version"]}
    kept.setdefault("name", "python")
    return kept


class HideTracebacks(NbGraderPreprocessor):
    """In test cells, show an error as its message only: tracebacks quote hidden tests.

    Test cells of notebooks graded before they were judged in the grader ran in the kernel;
    one stopped by the time limit kept nbclient's errors, which have no message. They become
    one that says why, with the time limit configured now (the notebook does not record the
    one it was graded with)."""

    @functools.cached_property
    def time_limit(self) -> int:
        return GuardedExecute(config=self.config).timeout

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, Any],
                        index: int) -> tuple[NotebookNode, dict[str, Any]]:
        if is_test(cell):
            if "outputs" in cell:
                cell.outputs = explain_timeout(cell.outputs, "This test cell", self.time_limit)
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources

