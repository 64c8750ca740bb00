"""convgrader.judge: test cells judged in the grader, on what the student's functions return."""
import torch
from nbformat.v4 import new_code_cell, new_output

from convcourse.checks import CheckFailed, Reported, check_shape_tuple, check_tensor, observe
from traitlets.config import Config

from convgrader.budget import TimeBudget
from convgrader.grading import GuardedExecute, HideTracebacks
from convgrader.judge import KernelCalls, judge_test_cells, split_hidden

TEST_CELL = """\
import torch
from torch.nn import functional as F
from convcourse.checks import check_tensor
X = torch.arange(18.0).reshape(2, 3, 3)
K = torch.ones(2, 2, 2)
check_tensor(corr2d_multi_in(X, K), F.conv2d(X[None], K[None])[0, 0], "worked")
print("visible done")
### BEGIN HIDDEN TESTS
check_tensor(corr2d_multi_in(X[:1], K[:1]), F.conv2d(X[None, :1], K[None, :1])[0, 0], "one channel")
### END HIDDEN TESTS
"""


def right(X, K):
    return torch.nn.functional.conv2d(X[None], K[None])[0, 0]


class LocalCalls(KernelCalls):
    """The student's functions called here instead of in a kernel, in the order called."""

    def __init__(self, functions):
        super().__init__(None, None, TimeBudget(60, float("inf"), 1))
        self.functions, self.order = functions, []

    def call(self, name, args, kwargs):
        self.order.append((args[0].shape[0], self.detailed))
        try:
            return Reported(observe(self.functions[name](*args, **kwargs)), self.detailed)
        except Exception as error:
            return Reported({"kind": "error", "ename": type(error).__name__,
                             "evalue": str(error)}, self.detailed)


def verdicts(function, cells=(TEST_CELL,)):
    calls = LocalCalls({"corr2d_multi_in": function})
    cells = [new_code_cell(source) for source in cells]
    return judge_test_cells(cells, calls, ["corr2d_multi_in"]), calls


def test_a_test_cell_splits_into_its_visible_and_hidden_parts():
    visible, hidden = split_hidden(TEST_CELL)
    assert "one channel" not in visible and 'print("visible done")' in visible
    assert hidden.strip().startswith('check_tensor(corr2d_multi_in(X[:1]')


def test_right_answers_pass_and_every_check_is_listed():
    (verdict,), _ = verdicts(right)
    assert (verdict.passed, verdict.failure) == (["worked", "one channel"], None)
    assert verdict.printed == "visible done\n"
    assert [o.output_type for o in verdict.outputs()] == ["stream", "stream"]


def test_every_visible_part_runs_before_any_hidden_part():
    _, calls = verdicts(right, [TEST_CELL, TEST_CELL])
    assert calls.order == [(2, True), (2, True), (1, False), (1, False)]


def test_a_failure_is_the_graders_error_and_stops_the_cell():
    def wrong_on_one_channel(X, K):
        return right(X, K) + (X.shape[0] == 1)
    (verdict,), _ = verdicts(wrong_on_one_channel)
    assert verdict.passed == ["worked"]
    assert verdict.failure == "one channel has the wrong values."
    outputs = verdict.outputs()
    assert outputs[-1].output_type == "error" and outputs[-1].ename == "CheckFailed"
    assert outputs[-1].traceback == ["CheckFailed: one channel has the wrong values."]


def test_a_hidden_part_is_skipped_once_the_visible_part_failed():
    (verdict,), calls = verdicts(lambda X, K: None)
    assert verdict.failure.startswith("worked should return a torch.Tensor")
    assert calls.order == [(2, True)]


def test_hidden_checks_never_quote_what_the_student_sent():
    secret = "SECRET-7f3a"

    def leaky(X, K):
        if X.shape[0] == 1:
            raise ValueError(secret)
        return right(X, K)
    (verdict,), _ = verdicts(leaky)
    assert verdict.failure == "one channel raised an exception."
    for sent in [{"kind": "other", "type": secret}, {"kind": "ints", "values": [7, 3]},
                 {"kind": "tensor", "shape": [9, 9], "dtype": secret, "floating": True,
                  "values": None}]:
        for check in (lambda got: check_tensor(got, torch.zeros(2, 2), "f(X)"),
                      lambda got: check_shape_tuple(got, (4, 4), "f(X)")):
            try:
                check(Reported(sent, detailed=False))
            except CheckFailed as failure:
                assert secret not in str(failure) and "7, 3" not in str(failure) \
                    and "9, 9" not in str(failure)


def test_a_malformed_result_from_the_kernel_fails_its_check():
    for sent in [None, [], {"kind": "tensor"}, {"kind": "tensor", "shape": [2, 2],
                                                 "floating": True, "values": "AAAA"},
                 {"kind": "tensor", "shape": [-1], "floating": True, "values": None},
                 {"kind": "ints", "values": ["4", 4]}, {"kind": "surprise"}]:
        try:
            check_tensor(Reported(sent), torch.zeros(2, 2), "f(X)")
        except CheckFailed as failure:
            assert "f(X)" in str(failure)
        else:
            raise AssertionError(f"{sent!r} passed")


def test_feedback_tracebacks_keep_only_the_message():
    cell = new_code_cell("hidden = 1\nassert hidden == 2", metadata={"nbgrader": {
        "grade": True, "solution": False, "grade_id": "t", "points": 1}})
    cell.outputs = [new_output("error", ename="CheckFailed", evalue="f(X) has the wrong shape",
                               traceback=["Traceback", "----> 2 assert hidden == 2"])]
    HideTracebacks().preprocess_cell(cell, {}, 0)
    assert cell.outputs[0].traceback == ["CheckFailed: f(X) has the wrong shape"]


def timed_out(cell):
    """``cell`` with the outputs nbclient and nbgrader leave when the time limit stops it: the
    interrupt's KeyboardInterrupt and a CellTimeoutError, both without a message."""
    cell.outputs = [
        new_output("stream", name="stdout", text="printed before the loop\n"),
        new_output("error", ename="KeyboardInterrupt", evalue="",
                   traceback=["KeyboardInterrupt  Traceback", "----> 7 check_tensor(...)"]),
        new_output("error", ename="CellTimeoutError", evalue="",
                   traceback=["CellTimeoutError: No reply from kernel before timeout"])]
    return cell


def test_feedback_says_a_test_cell_ran_past_the_time_limit():
    """A test cell that ran in the kernel (notebooks graded before test cells were judged in
    the grader) and was stopped: one error with the configured limit, no bare ones."""
    cell = timed_out(new_code_cell("check_tensor(...)", metadata={"nbgrader": {
        "grade": True, "solution": False, "grade_id": "t", "points": 1}}))
    config = Config()
    config.Execute.timeout = 7
    HideTracebacks(config=config).preprocess_cell(cell, {}, 0)
    assert [(o.output_type, o.get("ename")) for o in cell.outputs] == [
        ("stream", None), ("error", "CellTimeoutError")]
    message = "This test cell ran longer than the time limit of 7 s and was stopped."
    assert (cell.outputs[1].evalue, cell.outputs[1].traceback) == (
        message, [f"CellTimeoutError: {message}"])


def test_a_cell_past_the_time_limit_gets_one_error_that_says_why():
    cell = timed_out(new_code_cell("while True: pass"))
    executor = GuardedExecute(timeout=4)
    executor.budget = TimeBudget(executor.timeout, 600, 10)
    executor.budget.cell_limit(cell)  # what nbclient asked before it ran the cell
    executor._explain_timeout(cell)
    assert [o.get("evalue") for o in cell.outputs] == [
        None, "This cell ran longer than the time limit of 4 s and was stopped."]


def message(msg_type, data, display_id=None):
    content = {"data": data, "metadata": {}}
    if display_id:
        content["transient"] = {"display_id": display_id}
    return {"msg_type": msg_type, "header": {"msg_type": msg_type}, "parent_header": {},
            "content": content}


def capped_executor(**limits):
    from collections import Counter

    from convgrader.grading import GuardedExecute
    from nbformat.v4 import new_notebook
    executor = GuardedExecute(**limits)
    executor.nb = new_notebook(cells=[new_code_cell("pass"), new_code_cell("pass")])
    executor.reset_execution_trackers()
    executor.clear_before_next_output = False
    executor._spent_bytes, executor._spent_messages, executor._noted = Counter(), Counter(), set()
    return executor


def test_every_output_path_is_capped_per_cell_and_per_notebook():
    """Displays, outputs in the course's own call format and display updates all count
    (convgrader/outputs.py; test_outputs.py tests the budget of bytes and messages)."""
    executor = capped_executor(max_output_bytes=1000, max_notebook_output_bytes=1500)
    cell = executor.nb.cells[0]
    executor.process_message(message("display_data", {"text/plain": "x" * 600}, "d"), cell, 0)
    executor.process_message(message("display_data", {"application/vnd.convcourse.call+json":
                                                       {"type": "r" * 600}}), cell, 0)
    outs = cell.outputs
    assert len(outs) == 2 and "truncated by the grader" in outs[1].text
    # Updates of a display count too, and stop replacing it once over the cap.
    executor.process_message(message("update_display_data", {"text/plain": "u" * 300}, "d"),
                             cell, 0)
    assert outs[0].data["text/plain"] == "x" * 600
    # The notebook's budget is spent: the next cell keeps nothing either.
    later = executor.nb.cells[1]
    executor.process_message(message("display_data", {"text/plain": "y" * 10}), later, 1)
    assert len(later.outputs) <= 1 and all("y" * 10 not in str(o) for o in later.outputs)


def test_widget_messages_are_dropped():
    executor = capped_executor()
    outs = []
    executor.handle_comm_msg(outs, {"content": {"data": {"state": "w" * 10_000}}}, 0)
    assert outs == [] and not executor.widget_state
