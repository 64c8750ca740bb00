"""convcourse.grading's replay: a test cell judged in the grader from the kernel's records."""
import torch

from convcourse.checks import observe
from convcourse.grading import HideTracebacks, VerifyChecks
from nbformat.v4 import new_code_cell, new_output

TEST_CELL = """
import torch
from torch.nn import functional as F
from convcourse.checks import check_tensor
X = torch.arange(18.0).reshape(2, 3, 3)
K = torch.ones(2, 2, 2)
check_tensor(corr2d_multi_in(X, K), F.conv2d(X[None], K[None])[0, 0], "worked")
check_tensor(corr2d_multi_in(X[:1], K[:1]), F.conv2d(X[None, :1], K[None, :1])[0, 0], "one channel")
print("done")
"""
X = torch.arange(18.0).reshape(2, 3, 3)
K = torch.ones(2, 2, 2)
RIGHT = [("worked", torch.nn.functional.conv2d(X[None], K[None])[0, 0]),
         ("one channel", torch.nn.functional.conv2d(X[None, :1], K[None, :1])[0, 0])]


def records(results):
    return [{"what": what, **observe(got)} for what, got in results]


def replay(results):
    return VerifyChecks().replay(TEST_CELL, records(results), ["corr2d_multi_in"])


def test_right_records_pass_and_every_check_is_listed():
    assert replay(RIGHT) == (["worked", "one channel"], None)


def test_a_wrong_recorded_value_fails_with_the_reason():
    checked, reason = replay([RIGHT[0], ("one channel", RIGHT[1][1] + 1)])
    assert checked == ["worked", "one channel"]
    assert reason.startswith("one channel has the wrong values")


def test_missing_records_fail():
    checked, reason = replay(RIGHT[:1])
    assert "no result of this check reached the grader" in reason


def test_records_out_of_order_or_extra_fail():
    assert "recorded another check" in replay(RIGHT[::-1])[1]
    assert "recorded 3 checks" in replay(RIGHT + RIGHT[:1])[1]


def test_a_kernel_pass_becomes_a_failure_when_the_replay_fails():
    cell = new_code_cell(TEST_CELL, metadata={"nbgrader": {
        "grade": True, "solution": False, "grade_id": "t", "points": 1}})
    cell.outputs = [new_output("display_data", data={"application/vnd.convcourse.check+json": r})
                    for r in records([RIGHT[0]])]
    VerifyChecks().verify(cell, ["corr2d_multi_in"])
    assert [o.output_type for o in cell.outputs] == ["stream", "error"]
    assert "passed: worked" in cell.outputs[0].text
    assert cell.outputs[1].ename == "GraderCheckFailed"


def test_feedback_tracebacks_keep_only_the_message():
    cell = new_code_cell("hidden = 1\nassert hidden == 2", metadata={"nbgrader": {
        "grade": True, "solution": False, "grade_id": "t", "points": 1}})
    cell.outputs = [new_output("error", ename="CheckFailed", evalue="f(X) has the wrong shape",
                               traceback=["Traceback", "----> 2 assert hidden == 2"])]
    HideTracebacks().preprocess_cell(cell, {}, 0)
    assert cell.outputs[0].traceback == ["CheckFailed: f(X) has the wrong shape"]
