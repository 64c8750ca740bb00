"""Warm kernels start with torch loaded but share no state with the kernels before them."""
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_code_cell, new_notebook

from convcourse.warm import KERNEL_NAME


def run(*sources, timeout=30):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=timeout, allow_errors=True,
                   interrupt_on_timeout=True).execute()
    return [[o.get("text", o.get("ename", "")) for o in c.outputs] for c in nb.cells]


def test_a_kernel_starts_with_torch_already_imported():
    assert run("import sys; print('torch' in sys.modules, 'd2l.torch' in sys.modules)") == \
        [["True True\n"]]


def test_a_kernel_computes_on_one_thread():
    # Graders run one kernel per core; more threads would spin against the other workers.
    assert run("import torch; print(torch.get_num_threads())") == [["1\n"]]


def test_patches_and_globals_do_not_reach_the_next_kernel():
    run("import torch, builtins, torch.testing\n"
        "torch.testing.assert_close = lambda *a, **k: None\n"
        "torch.allclose = lambda *a, **k: True\n"
        "builtins.leftover = 'from the previous student'\n"
        "import convcourse.checks; convcourse.checks.check_tensor = None")
    after = run("import torch, builtins, torch.testing, convcourse.checks\n"
                "print(torch.testing.assert_close.__module__, torch.allclose(torch.zeros(1), torch.ones(1)),\n"
                "      hasattr(builtins, 'leftover'), convcourse.checks.check_tensor is not None)")
    assert after == [["torch.testing._comparison False False True\n"]]


def test_a_looping_cell_is_interrupted_and_the_kernel_goes_on():
    outputs = run("while True: pass", "print('after')", timeout=5)
    assert outputs[0] and outputs[1] == ["after\n"]


def test_a_kernel_that_exits_is_seen_as_dead():
    with pytest.raises(DeadKernelError):
        nb = new_notebook(cells=[new_code_cell("import os; os._exit(3)"), new_code_cell("1")])
        NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=30).execute()
