"""convcourse.checks: right answers pass in any form, wrong ones fail with a readable reason."""
import numpy as np
import pytest
import torch

from convcourse.checks import (CheckFailed, Reported, check_int, check_shape_tuple, check_tensor,
                               observe, random_tensor)

WORKED = [[56.0, 72.0], [104.0, 120.0]]


@pytest.mark.parametrize("got", [
    torch.tensor(WORKED),
    torch.tensor(WORKED, dtype=torch.float64),
    torch.tensor(WORKED, dtype=torch.float16),
    torch.tensor(WORKED) + 1e-5,
    torch.nn.Parameter(torch.tensor(WORKED)),
    torch.tensor(WORKED, requires_grad=True) * 1.0,
])
def test_correct_results_pass_whatever_their_dtype_or_origin(got):
    check_tensor(got, WORKED, "f(X)")


def failure(got, expected=WORKED):
    with pytest.raises(CheckFailed) as raised:
        check_tensor(got, expected, "corr2d_multi_in(X, K)")
    return str(raised.value)


def test_not_a_tensor_says_what_came_back():
    message = failure([[56, 72], [104, 120]])
    assert "should return a torch.Tensor of shape (2, 2)" in message
    assert "builtins.list" in message


def test_wrong_shape_comes_before_values():
    assert failure(torch.zeros(2, 2, 1)) == \
        "corr2d_multi_in(X, K) has the wrong shape: expected (2, 2), got (2, 2, 1)."


def test_integer_results_are_refused():
    assert "floating-point" in failure(torch.tensor([[56, 72], [104, 120]]))


@pytest.mark.parametrize("wrong", [121.0, float("nan"), float("inf"), 120.1])
def test_wrong_values_name_the_first_wrong_element(wrong):
    got = torch.tensor(WORKED)
    got[1, 1] = wrong
    message = failure(got)
    assert "1 of 4 elements differ; at index (1, 1) expected 120" in message
    assert "expected\ntensor(" in message and "\ngot\ntensor(" in message


def test_a_failing_check_leaves_the_students_print_options_as_they_were():
    torch.set_printoptions(precision=2, linewidth=50)
    try:
        failure(torch.tensor(WORKED) + 1)
        assert str(torch.tensor([1 / 3])) == "tensor([0.33])"
    finally:
        torch.set_printoptions(profile="default")


def test_an_object_that_claims_equality_fails():
    class AlwaysEqual:
        def __eq__(self, other):
            return True
    assert "should return a torch.Tensor" in failure(AlwaysEqual())


def test_a_tensor_subclass_cannot_answer_for_itself():
    class Liar(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            if func.__name__ in ("__eq__", "allclose", "isclose", "equal"):
                return True
            return super().__torch_function__(func, types, args, kwargs or {})
    liar = torch.zeros(2, 2).as_subclass(Liar)
    assert "has the wrong values" in failure(liar)


def test_shape_tuples():
    check_shape_tuple((4, 4), (4, 4), "conv_output_shape(5, 2)")
    check_shape_tuple([np.int64(4), 4], (4, 4), "conv_output_shape(5, 2)")
    for wrong, reason in [((4, 5), "expected (4, 4), got (4, 5)"),
                          ("4x4", "tuple of ints"),
                          ((4.0, 4.0), "tuple of ints"),
                          ((True, 4), "tuple of ints")]:
        with pytest.raises(CheckFailed, match=reason.replace("(", r"\(").replace(")", r"\)")):
            check_shape_tuple(wrong, (4, 4), "conv_output_shape(5, 2)")


def test_a_shape_of_floats_is_told_its_elements_are_floats():
    """(4.0, 4.0) from true division: the message names floats, quotes them, and says how."""
    with pytest.raises(CheckFailed) as raised:
        check_shape_tuple((4.0, 4.0), (4, 4), "conv_output_shape(X.shape, (3, 3), padding=1)")
    assert str(raised.value) == (
        "conv_output_shape(X.shape, (3, 3), padding=1) should return a tuple of ints like "
        "(4, 4), but returned a tuple of floats, (4.0, 4.0).\nIts elements must be Python ints: "
        "use integer division (//) or int(...) on each.")
    # What the grader receives from the kernel: the same words, checked to be numbers.
    from convcourse.checks import Reported, observe
    with pytest.raises(CheckFailed, match=r"a list of floats, \[4.5, inf\]"):
        check_shape_tuple(Reported(observe([4.5, float("inf")])), (4, 4), "f()")
    forged = {**observe((4.0, 4.0)), "floats": ["<script>", 4.0]}
    assert Reported(forged).record == {"kind": "unreadable"}


def test_counts_are_checked_as_ints():
    check_int(56, 56, "conv2d_param_count(3, 2, 3)")
    check_int(np.int64(56), 56, "conv2d_param_count(3, 2, 3)")
    for wrong, message in [
            (54, "conv2d_param_count(3, 2, 3): expected 56, got 54."),
            (56.0, "should return an int like 56, but returned a float, 56.0.\nReturn a Python int"),
            (torch.tensor(56), "returned a tensor of shape () and dtype torch.int64.\nReturn a Python int"),
            (True, "should return an int like 56, but returned a builtins.bool."),
            ((56,), "should return an int like 56, but returned (56,).")]:
        with pytest.raises(CheckFailed) as raised:
            check_int(wrong, 56, "conv2d_param_count(3, 2, 3)")
        assert message in str(raised.value)
    # Hidden cases never quote the student's value; a forged record is unreadable.
    with pytest.raises(CheckFailed, match=r"^f\(\): expected 56\.$"):
        check_int(Reported(observe(55), detailed=False), 56, "f()")
    assert Reported({"kind": "int", "value": 2 ** 70}).record == {"kind": "unreadable"}
    assert Reported({"kind": "int", "value": "56"}).record == {"kind": "unreadable"}


def test_random_tensors_are_reproducible_small_integers():
    first = random_tensor(torch.Generator().manual_seed(1), 3, 4)
    again = random_tensor(torch.Generator().manual_seed(1), 3, 4)
    assert torch.equal(first, again) and first.dtype == torch.float32
    assert torch.equal(first, first.round()) and first.abs().max() <= 4


@pytest.mark.parametrize("kind", ["missing", "timeout", "stopped", "no result"])
@pytest.mark.parametrize("detailed", [True, False])
def test_a_kernels_reason_never_reaches_a_message(kind, detailed):
    """A kernel answering a call with a failure of its own words (which could quote the
    hidden input it was sent) gets the grader's words, or none: only the grader's own
    conclusions about a call carry a reason."""
    leak = "LEAK X=[[[2.0, -4.0, 1.0, -1.0]]]"
    sent = {"kind": kind, "reason": leak, "evalue": leak, "type": leak}
    for check in (lambda got: check_tensor(got, torch.zeros(2, 2), "f(X)"),
                  lambda got: check_shape_tuple(got, (2, 2), "f(X)"),
                  lambda got: check_int(got, 4, "f(X)")):
        with pytest.raises(CheckFailed) as raised:
            check(Reported(sent, detailed=detailed))
        assert "LEAK" not in str(raised.value) and "2.0" not in str(raised.value)
    if kind == "missing":
        with pytest.raises(CheckFailed, match=r"^f\(X\): the function is not defined"):
            check_int(Reported(sent, detailed=detailed), 4, "f(X)")
    else:  # the grader's kinds, sent by a kernel, are unreadable
        assert Reported(sent).record == {"kind": "unreadable"}
        with pytest.raises(CheckFailed, match=r"^f\(X\) ran longer than the time limit"):
            check_int(Reported.failure("timeout", "ran longer than the time limit.", detailed),
                      4, "f(X)")
