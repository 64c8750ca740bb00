"""nbgrader preprocessors that make the course's grades hold against broken or hostile code.

nbgrader_config.py puts them into ``nbgrader autograde`` and ``generate_feedback``:

- ``RestoreCellRoles`` (sanitizing): nbgrader metadata is made the gradebook's again: an
  unknown grade_id (a renamed cell) is dropped, so the notebook still validates and its code
  runs as an ordinary cell; a known one gets back its role and points. Deleted test cells
  come back through nbgrader's own ``OverwriteCells.add_missing_cells``.
- ``GuardedExecute`` (executing): when the kernel dies, or keeps running after the timeout's
  interrupt, every later cell gets an error instead of no output (a cell without output
  would count as passed, nbgrader #427); a cell's output is capped in size.
- ``VerifyChecks`` (after executing): every test cell is run again in the grader's process,
  with the student's results that its checks recorded in the kernel (``convcourse.checks``).
  Expected values are computed and compared there, so patching torch, the checks or IPython
  in the kernel cannot turn a wrong answer into a pass.
- ``HideTracebacks`` (feedback): errors in test cells show only their message, since a
  traceback prints the lines of hidden tests around the failure.
"""
import contextlib
import io
import time

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer

from convcourse import checks
from convcourse.notebooks import is_test, nbgrader_meta


def error_output(ename, evalue):
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


def _has_error(cell):
    return any(o.output_type == "error" for o in cell.get("outputs", []))


class RestoreCellRoles(NbGraderPreprocessor):
    """Give every nbgrader cell back the role the gradebook records for its grade_id.

    A grade_id the gradebook does not know loses its nbgrader metadata (the cell runs as an
    ordinary cell); a known one gets its recorded role back (answer, test, task, locked),
    so a student cannot turn an answer into a graded cell or a test into an answer.
    """

    def preprocess(self, nb, resources):
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


class KernelStopped(Exception):
    """The kernel can run no more cells: it died, or it ignored the timeout's interrupt."""


class GuardedExecute(Execute):
    """nbgrader's Execute, made safe against dying, stuck and flooding kernels."""

    max_output_chars = Integer(
        1_000_000, help="Output kept per cell, in characters; the rest is dropped.").tag(config=True)
    max_records = Integer(
        1_000, help="Check records kept per cell (convcourse.checks).").tag(config=True)
    interrupt_grace = Integer(
        10, help="Seconds a kernel has to become responsive after a timeout's interrupt."
    ).tag(config=True)

    notebook_timeout = Integer(
        600, help="Seconds for the whole notebook; cells that would start later fail."
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._stopped = None
        self._output_chars = {}
        self._deadline = time.monotonic() + self.notebook_timeout
        self._cell_timeout = self.timeout
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self.timeout = self._cell_timeout

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        left = self._deadline - time.monotonic()
        if not self._stopped and left <= 0:
            self._stopped = (f"The notebook ran past its time limit ({self.notebook_timeout} s); "
                             "this cell and later ones could not run.")
        if self._stopped:
            cell.outputs = [error_output("KernelStopped", self._stopped)]
            return cell, resources
        # A cell may not run past the notebook's deadline either.
        self.timeout = max(1, min(self._cell_timeout or left, int(left) + 1))
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            if any(o.get("ename") == "CellTimeoutError" for o in cell.outputs):
                self._check_responsive()
        except DeadKernelError:
            self._stop(cell, "The kernel died while this cell ran (did the code exit the "
                             "process or run out of memory?); later cells could not run.")
        except (CellTimeoutError, KernelStopped):
            self._stop(cell, "This cell ran past the time limit and the kernel did not stop "
                             "when interrupted; later cells could not run.")
        return cell, resources

    def _stop(self, cell, reason):
        self.log.error("Stopping execution: %s", reason)
        self._stopped = reason
        cell.outputs.append(error_output("KernelStopped", reason))

    def _check_responsive(self):
        """After a timeout's interrupt, the kernel must answer a no-op within the grace time."""
        msg_id = self.kc.execute("", silent=True, store_history=False)
        # nbclient's wait_for_reply waits self.timeout (None: when no cell is given), then
        # interrupts again and answers None.
        self.timeout = self.interrupt_grace
        try:
            reply = self.wait_for_reply(msg_id)
        except Exception as error:  # DeadKernelError
            raise KernelStopped() from error
        if reply is None:
            raise KernelStopped()

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg["msg_type"] == "display_data" and checks.RECORD_MIME in content.get("data", {}):
            records = sum(1 for o in outs if checks.RECORD_MIME in o.get("data", {}))
            if records >= self.max_records:
                return None
            return super().output(outs, msg, display_id, cell_index)
        size = len(content.get("text", "")) + sum(
            len(str(v)) for v in content.get("data", {}).values())
        used = self._output_chars.get(cell_index, 0)
        self._output_chars[cell_index] = used + size
        if used + size <= self.max_output_chars:
            return super().output(outs, msg, display_id, cell_index)
        if used <= self.max_output_chars:
            note = NotebookNode(output_type="stream", name="stderr", text=(
                f"\n... output truncated by the grader: over {self.max_output_chars:,} "
                "characters ...\n"))
            outs.append(note)
        return None


class VerifyChecks(NbGraderPreprocessor):
    """Judge every test cell again, in this process, from the results its checks recorded."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            student_names = [c.name for c in notebook.solution_cells]
        for cell in nb.cells:
            if is_test(cell):
                self.verify(cell, student_names)
        return nb, resources

    def verify(self, cell, student_names):
        records = [o.data[checks.RECORD_MIME] for o in cell.outputs
                   if o.output_type == "display_data" and checks.RECORD_MIME in o.get("data", {})]
        cell.outputs = [o for o in cell.outputs if checks.RECORD_MIME not in o.get("data", {})]
        checked, reason = self.replay(cell.source, records, student_names)
        lines = [f"  passed: {what}" for what in (checked[:-1] if reason else checked)]
        if reason:
            lines.append(f"  FAILED: {reason}")
        cell.outputs.append(NotebookNode(output_type="stream", name="stdout",
                                         text="Grader's checks:\n" + "\n".join(lines) + "\n"))
        if reason and not _has_error(cell):
            self.log.warning("Test cell %s passed in the kernel but not in the grader: %s",
                             nbgrader_meta(cell)["grade_id"], reason)
            cell.outputs.append(error_output("GraderCheckFailed", reason))

    def replay(self, source, records, student_names):
        """The checks made, and None if the test cell passes on the records, else why not."""
        def not_recorded(*args, **kwargs):
            return None  # the checks take the student's result from the records
        namespace = {"__name__": "__convcourse_replay__",
                     **{name: not_recorded for name in student_names}}
        with checks.replaying(records) as replay:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(source, "<test cell>", "exec"), namespace)
            except checks.CheckFailed as failure:
                return replay.checked, str(failure)
            except Exception as error:
                self.log.error("A test cell failed to replay in the grader: %r", error)
                return replay.checked + ["(replay)"], (
                    f"The grader could not re-run this test cell ({type(error).__name__}: "
                    f"{error}).")
        if replay.taken != len(records):
            return replay.checked + ["(extra records)"], (
                f"The notebook recorded {len(records)} checks in this cell, the test cell "
                f"makes {replay.taken}: it did not run as written.")
        return replay.checked, None


class HideTracebacks(NbGraderPreprocessor):
    """In test cells, show an error as its message only: tracebacks quote hidden tests."""

    def preprocess_cell(self, cell, resources, index):
        if is_test(cell):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources

