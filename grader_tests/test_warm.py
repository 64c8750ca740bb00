"""Warm kernels start with torch loaded but share no state with the kernels before them;
no kernel outlives its fork server; the removal of what kernels leave (convgrader/fs.py)."""
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_code_cell, new_notebook

from convgrader import fs
from convgrader.kernels.clients import PromptKernelClient
from convgrader.kernels.forkserver import KERNEL_NAME
from convgrader.kernels.inside import reset, server
from grading_kernels import stop_grading_servers

pytestmark = pytest.mark.grading


@pytest.fixture(scope="module", autouse=True)
def fork_server_stopped_after_the_module():
    """This process's fork server (and so its kernels) ends with the module's tests."""
    yield
    stop_grading_servers()


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
    assert fs.empty(tmp_path, {str(venv)}) == []
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "course", "course/.venv", "course/.venv/bin", "course/.venv/bin/python"]
    assert (venv / "bin" / "python").read_text() == "kept"
    assert fs.leftovers(tmp_path, {str(venv)}) == []


def test_the_mount_points_include_the_root():
    assert "/" in reset.mount_points()


def test_the_reset_empties_every_writable_mount_not_a_list(tmp_path):
    """What the reset empties comes from the mount table: any read-write file system but
    /proc and terminals, and not a mounted file (/dev/null)."""
    for name in ("tmp", "work", "ro", "proc", "pts"):
        (tmp_path / name).mkdir()
    (tmp_path / "null").write_text("")
    mounts = [(str(tmp_path / "tmp"), "tmpfs", True), (str(tmp_path / "work"), "ext4", True),
              (str(tmp_path / "ro"), "ext4", False), (str(tmp_path / "proc"), "proc", True),
              (str(tmp_path / "pts"), "devpts", True), (str(tmp_path / "null"), "devtmpfs", True),
              (str(tmp_path / "missing"), "tmpfs", True)]
    assert reset._writable_folders(mounts) == [str(tmp_path / "tmp"), str(tmp_path / "work")]


# ---- removing what kernels leave: fs.py ------------------------------------------------------

def deep_tree(top, levels, name="d" * 100, lock_every=500, link_to=None):
    """A tree ``levels`` folders deep under ``top`` (paths far beyond PATH_MAX), with a
    file and a link in every folder, and some folders locked (mode 0) as a kernel may."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for level in range(levels):
        os.mkdir(name, dir_fd=fd)
        os.close(os.open("file", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=fd))
        os.symlink(link_to or "/", "link", dir_fd=fd)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        if level % lock_every == lock_every - 1:
            os.fchmod(fd, 0)
        os.close(fd)
        fd = child
    os.fchmod(fd, 0)
    os.close(fd)


def test_a_tree_3000_folders_deep_is_removed_without_following_links(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "kept.txt").write_text("the grader's")
    (tmp_path / "work").mkdir()
    deep_tree(tmp_path / "work", 3000, link_to=str(victim))
    monkeypatch.setattr(fs, "MAX_OPEN", 8)
    # The descriptors this thread opens and closes while removing the tree: every one it
    # opened must be closed (the process's own count also moves with other threads' work).
    test_thread, opened, still_open = threading.get_ident(), [], set()
    real_open, real_close = os.open, os.close

    def counted_open(*args, **kwargs):
        fd = real_open(*args, **kwargs)
        if threading.get_ident() == test_thread:
            opened.append(args[0])
            still_open.add(fd)
        return fd

    def counted_close(fd):
        still_open.discard(fd)
        return real_close(fd)

    monkeypatch.setattr(os, "open", counted_open)
    monkeypatch.setattr(os, "close", counted_close)
    assert fs.remove_tree(tmp_path / "work") == []
    assert not (tmp_path / "work").exists()
    assert (victim / "kept.txt").read_text() == "the grader's"
    assert still_open == set()
    assert len(opened) > 3000  # every folder was opened: relative to its parent, by name


def test_empty_keeps_the_folder_and_removes_links_not_their_targets(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "file").write_text("x")
    work = tmp_path / "work"
    work.mkdir()
    (work / "to_target").symlink_to(target)
    (work / "sub").mkdir()
    (work / "sub" / "to_file").symlink_to(target / "file")
    os.mkfifo(work / "fifo")
    deep_tree(work, 50, lock_every=7)
    os.chmod(work, 0o500)  # a kernel took the write permission off its own folder
    assert fs.empty(work) == []
    assert os.listdir(work) == [] and (target / "file").read_text() == "x"


def test_remove_tree_of_a_link_or_nothing(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    assert fs.remove_tree(tmp_path / "link") == []
    assert (tmp_path / "target").is_dir() and not (tmp_path / "link").exists()
    assert fs.remove_tree(tmp_path / "missing") == []


# ---- no kernel outlives its fork server, nor the server its grader ---------------------------

GRADER = """
import json, sys, time
from jupyter_client.manager import KernelManager
from convgrader.kernels import forkserver, sandbox
km = KernelManager(kernel_name=sys.argv[1])
km.start_kernel(cwd=sys.argv[2])
box = sandbox.Sandbox.current()
print(json.dumps({"kernel": km.provisioner.pid,
                  "server": (box or forkserver.ForkServer.current()).process.pid,
                  "cgroup": str(box.cgroup.paths["pids"]) if box else None,
                  "directory": str((box or forkserver.ForkServer.current()).directory)}), flush=True)
time.sleep(600)
"""


def start_grader(kernel_name, folder):
    """A grading process that starts one kernel and waits; it and what it printed."""
    grader = subprocess.Popen([sys.executable, "-c", GRADER, kernel_name, str(folder)],
                              stdout=subprocess.PIPE, text=True)
    line = grader.stdout.readline()
    if not line:
        grader.kill()
        raise AssertionError("the grading process did not start a kernel")
    return grader, json.loads(line)


def running(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone_within(pids, seconds=10):
    deadline = time.monotonic() + seconds
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if running(p)]


@pytest.mark.parametrize("killed", ["grader", "fork server"])
def test_no_warm_kernel_outlives_its_fork_server_or_grader(tmp_path, killed):
    grader, pids = start_grader(KERNEL_NAME, tmp_path)
    try:
        assert running(pids["kernel"]) and running(pids["server"])
        assert psutil.Process(pids["kernel"]).ppid() == pids["server"]
        os.kill(grader.pid if killed == "grader" else pids["server"], signal.SIGKILL)
        assert gone_within([pids["kernel"], pids["server"]]) == []
    finally:
        grader.kill()
        grader.wait()
    fs.remove_stale("convcourse-warm-")  # as the next grading process does
    assert not os.path.exists(pids["directory"])


def test_a_kernel_whose_server_died_before_it_could_watch_it_exits(tmp_path):
    """The race: the parent is gone before the child asks for its death signal."""
    code = ("import os, sys, time\n"
            "from convgrader.kernels.inside import kernel\n"
            "parent = os.getpid()\n"
            "if os.fork() == 0:\n"
            "    time.sleep(0.5)  # the parent exits meanwhile\n"
            "    kernel.die_with(parent)\n"
            "    open(sys.argv[1], 'w').write('survived')\n"
            "    os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], check=True)
    time.sleep(1.5)
    assert not (tmp_path / "out").exists()


def test_a_failure_in_the_child_is_reported():
    def fail():
        raise OSError(1, "unshare: Operation not permitted")
    assert server._try_in_child(fail) == "PermissionError: [Errno 1] unshare: Operation not permitted"
    assert server._try_in_child(lambda: None) is None
