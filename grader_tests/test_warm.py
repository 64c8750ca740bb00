"""Warm kernels start with torch loaded but share no state with the kernels before them."""
import asyncio

import pytest
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_code_cell, new_notebook

from convcourse import warm
from convcourse.warm import KERNEL_NAME, PromptKernelClient


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


@pytest.mark.parametrize("greeting_timeout", [10.0, 0.0], ids=["greeted", "stock wait"])
def test_the_prompt_client_is_ready_with_nothing_left_unread(monkeypatch, greeting_timeout):
    stock_waits = []
    stock_wait = AsyncKernelClient.wait_for_ready

    async def counted(self, timeout=None):
        stock_waits.append(timeout)
        return await stock_wait(self, timeout)

    monkeypatch.setattr(AsyncKernelClient, "wait_for_ready", counted)

    async def start_and_run():
        km = AsyncKernelManager(kernel_name=KERNEL_NAME, client_class=PromptKernelClient.__module__
                                + "." + PromptKernelClient.__name__)
        await km.start_kernel()
        kc = km.client()
        kc.greeting_timeout = greeting_timeout
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            # The kernel_info request's reply and statuses are all read: none would be taken
            # for the first cell's.
            leftovers = [await kc.shell_channel.msg_ready(), await kc.iopub_channel.msg_ready()]
            printed = []
            await kc.execute_interactive(
                "print(6 * 7)", output_hook=lambda m: printed.append(m["content"].get("text")))
            return leftovers, printed
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    leftovers, printed = asyncio.run(start_and_run())
    assert leftovers == [False, False]
    assert "42\n" in printed
    assert len(stock_waits) == (0 if greeting_timeout else 1)


def test_a_sandbox_reset_empties_tmp_but_keeps_the_graders_mounts(tmp_path):
    """A venv or course under /tmp is mounted into the sandbox's /tmp: the reset keeps it
    and the folders on the way to it, and removes everything a kernel left around them."""
    venv = tmp_path / "course" / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("kept")
    (tmp_path / "course" / "planted.py").write_text("left by a kernel")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(venv)
    assert warm._empty_keeping(tmp_path, {str(venv)}) == []
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "course", "course/.venv", "course/.venv/bin", "course/.venv/bin/python"]
    assert (venv / "bin" / "python").read_text() == "kept"


def test_the_mount_points_include_the_root():
    assert "/" in warm._mount_points()
