"""The grading sandbox: what a kernel can see, reach and use (convgrader/kernels/sandbox.py).

The attacks on grades (gradebook, source/, other students, writing outside, memory) are
sample submissions graded end to end (sample_class/01_*/attack_*.py, test_autograde and
test_batch). Here: the network, process limits, clean-up between kernels, refusal without
bubblewrap, and the notebook time limit.
"""
import json
import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbclient import NotebookClient

from convgrader import judge
from convgrader.errors import SandboxUnavailable
from convgrader.grading import GuardedExecute
from convgrader.kernels import bwrap, forkserver, limits, protocol, sandbox
from course_copies import COURSE_ROOT
from grading_kernels import live_kernel, stop_grading_servers, text

pytestmark = [pytest.mark.grading, pytest.mark.skipif(
    bwrap.unavailable_reason() is not None and not os.environ.get("CI"),
    reason=f"no sandbox here: {bwrap.unavailable_reason()}")]


def run(cells, folder, kernel=sandbox.KERNEL_NAME, timeout=60):
    """Run code cells with ``kernel`` in ``folder``; the notebook with its outputs."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, kernel_name=kernel, timeout=timeout, allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


@pytest.fixture(scope="module", autouse=True)
def servers_stopped_after_the_module():
    """This process's sandbox and fork server (and so their kernels) end with the module."""
    yield
    stop_grading_servers()


def test_ci_has_a_sandbox():
    assert bwrap.unavailable_reason() is None


@pytest.fixture
def course(tmp_path):
    """A course-like folder: a gradebook and source/ next to a student's folder."""
    (tmp_path / "gradebook.db").write_text("grades")
    (tmp_path / "source").mkdir()
    student = tmp_path / "autograded" / "alice" / "01"
    student.mkdir(parents=True)
    (student / "data.txt").write_text("the student's own file")
    return tmp_path


def test_kernel_sees_its_folder_and_nothing_of_the_course(course):
    student = course / "autograded" / "alice" / "01"
    hidden = [str(course), str(course / "gradebook.db")]
    home = os.path.expanduser("~")
    nb = run([
        "import os, sys; print(open('data.txt').read())",
        "open('written.txt', 'w').write('ok'); print(os.path.exists('written.txt'))",
        f"print([os.path.exists(p) for p in {hidden!r}])\n"
        f"print(sorted(os.listdir({home!r})) if os.path.isdir({home!r}) else [])",
        f"open({str(course / 'PWNED')!r}, 'w')",
        f"open({sys.prefix + '/PWNED'!r}, 'w')",
    ], student)
    assert text(nb, 0).strip() == "the student's own file"
    assert text(nb, 1).strip() == "True"
    seen, home_entries = text(nb, 2).strip().split("\n")
    assert seen == "[False, False]"
    # Of the home directory, at most the folder of the Python installation is there.
    python_home = [p for p in Path(sys.base_prefix).parents if Path(home) in p.parents]
    assert set(eval(home_entries)) <= {p.name for p in python_home} | {Path(sys.base_prefix).name}
    assert "No such file or directory" in text(nb, 3)
    assert "Read-only file system" in text(nb, 4)
    assert not (course / "PWNED").exists() and not Path(sys.prefix, "PWNED").exists()
    # The kernel wrote in a copy of the folder: the submission itself is as it was.
    assert not (student / "written.txt").exists()


@pytest.fixture
def tcp_server():
    """A TCP server on loopback that answers "hello" to whoever connects."""
    server = socket.create_server(("127.0.0.1", 0))
    def answer():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.sendall(b"hello")
    threading.Thread(target=answer, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


CONNECT = """import socket
try:
    print(socket.create_connection(("127.0.0.1", {port}), timeout=5).recv(5).decode())
except OSError as error:
    print("no connection:", error)"""


def test_no_network(tcp_server, tmp_path):
    sandboxed = run([CONNECT.format(port=tcp_server)], tmp_path)
    unconfined = run([CONNECT.format(port=tcp_server)], tmp_path, kernel=forkserver.KERNEL_NAME)
    assert text(unconfined, 0).strip() == "hello"  # the server is there to be reached
    assert text(sandboxed, 0).startswith("no connection:")


# Forked from a fresh Python that the kernel starts: a fork of the kernel itself (torch
# loaded) costs 40 ms, of a bare Python 1 ms, and both count against the sandbox's limit.
FORK_BOMB = """import subprocess, sys
print(subprocess.run([sys.executable, "-c", '''
import os, time
children = 0
try:
    for _ in range(5000):
        if os.fork() == 0:
            os.closerange(0, 3)  # the pipe of the output ends with the parent
            time.sleep(600)
            os._exit(0)
        children += 1
except OSError as error:
    print("stopped:", error.strerror)
print(children)'''], capture_output=True, text=True).stdout.strip())"""


def test_fork_bomb_is_bounded_and_cleared_before_the_next_kernel(tmp_path):
    bomb = run([FORK_BOMB], tmp_path)
    lines = text(bomb, 0).split("\n")
    assert lines[0].startswith("stopped:")
    assert int(lines[1]) < 512
    first = sandbox.Sandbox.current()
    # The next kernel in the same sandbox finds none of those processes, and works. (The
    # bomb fills the memory limit too: the out-of-memory killer takes its processes, not the
    # sandbox's server.)
    after = run(["import os; print(sum(p.isdigit() for p in os.listdir('/proc')))",
                 "print(sum(range(10)))"], tmp_path)
    assert int(text(after, 0)) < 10  # the server, this kernel and what it started
    assert text(after, 1).strip() == "45"
    assert sandbox.Sandbox.current() is first, sandbox.Sandbox.last_replaced


def test_a_kernel_cannot_signal_or_trace_the_fork_server(tmp_path):
    nb = run(["import os, signal\ntry:\n    os.kill(1, signal.SIGKILL)\nexcept OSError as e:\n"
              "    print(e)\nprint('still here')",
              "print(open('/proc/1/mem', 'rb').read(1))"], tmp_path)
    assert text(nb, 0).strip().endswith("still here")
    assert "Permission denied" in text(nb, 1)
    # The server survived: the next kernel starts.
    assert text(run(["print('next')"], tmp_path), 0).strip() == "next"


PLANT = """import os, pathlib
startup = pathlib.Path(os.environ["IPYTHONDIR"], "profile_default", "startup")
startup.mkdir(parents=True, exist_ok=True)
(startup / "00-next-student.py").write_text("import builtins; builtins.PLANTED = True")
locked = pathlib.Path("/tmp/locked/inner")
locked.mkdir(parents=True)
(locked / "file").write_text("x")
os.chmod(locked, 0)
os.chmod(locked.parent, 0)
sandbox = pathlib.Path.cwd().parent
os.unlink(sandbox / "kernel.json")
os.symlink({victim!r}, sandbox / "kernel.json")
print("planted")"""


def test_nothing_a_kernel_leaves_reaches_the_next(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("the grader's file")
    assert text(run([PLANT.format(victim=str(victim))], tmp_path), 0).strip() == "planted"
    after = run(["import builtins, os; print(hasattr(builtins, 'PLANTED'), "
                 "os.path.exists('/tmp/locked'))"], tmp_path)
    assert text(after, 0).strip() == "False False"
    assert victim.read_text() == "the grader's file"


REFUSAL = """
import logging
logging.basicConfig()
import nbformat
from nbclient import NotebookClient
from traitlets.config import Config
config = Config()
config.SandboxedProvisioner.allow_unsandboxed = {allow}
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('ran')")])
client = NotebookClient(nb, kernel_name="convcourse-sandbox", config=config, timeout=60)
try:
    client.execute()
    print(nb.cells[0].outputs[0]["text"].strip())
except Exception as error:
    print(error)
"""


@pytest.mark.parametrize("allow", [False, True])
def test_without_bubblewrap_grading_refuses_unless_allowed(tmp_path, allow):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # no /usr/bin/bwrap
    result = subprocess.run([sys.executable, "-c", REFUSAL.format(allow=allow)], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    if allow:
        assert result.stdout.strip().endswith("ran")
        assert "WITHOUT a sandbox" in result.stderr
    else:
        assert "Refusing to run student code without a sandbox: bubblewrap" in result.stdout


SECCOMP_BWRAP = """#!/bin/sh
echo "bwrap: No permissions to create a new namespace, likely because the kernel does not \
allow non-privileged user namespaces. On e.g. debian this can be enabled with \
'sysctl kernel.unprivileged_userns_clone=1'." >&2
exit 1
"""


def test_where_user_namespaces_are_refused_grading_says_the_ways_on(tmp_path):
    """A container under the default seccomp profile: bubblewrap is there but cannot make
    namespaces. Grading refuses with bubblewrap's words and the ways on, before any kernel."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text(SECCOMP_BWRAP)
    (fake / "bwrap").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}:{Path(sys.executable).parent}")
    result = subprocess.run([sys.executable, "-c", REFUSAL.format(allow=False)], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    said = result.stdout.strip()
    assert said.startswith("Refusing to run student code without a sandbox: bubblewrap "
                           "cannot create user namespaces here (bwrap: No permissions"), said
    assert "Run the grader where unprivileged user namespaces are allowed" in said
    assert "allow_unsandboxed = True" in said


def test_after_an_interrupted_cell_the_next_cells_run(tmp_path):
    """As in stock nbgrader: a cell past its time limit is interrupted, and a kernel that
    stops goes on with the next cells (one that swallows the interrupt does not, see
    the sample class's attack_ignore_interrupt)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in [
        "import time\nwhile True:\n    time.sleep(0.05)", "print('next')"]])
    GuardedExecute(timeout=2, kernel_name=forkserver.KERNEL_NAME).preprocess(
        nb, {"metadata": {"path": str(tmp_path)}})
    assert "CellTimeoutError" in str(nb.cells[0].outputs)
    assert "KernelStopped" not in str(nb.cells[0].outputs)
    assert text(nb, 1) == "next\n"


def test_notebook_time_limit_stops_later_cells(tmp_path):
    server = forkserver.ForkServer.get()  # the limit is the notebook's, not the server's import
    server.wait_until_serving()
    protocol.ask(server.socket_path, {"op": "ping"}, timeout=300)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in [
        "import time; time.sleep(2)", "time.sleep(2)", "print('too late')"]])
    start = time.monotonic()
    GuardedExecute(notebook_timeout=3, timeout=30, kernel_name=forkserver.KERNEL_NAME).preprocess(
        nb, {"metadata": {"path": str(tmp_path)}})
    assert time.monotonic() - start < 15
    assert "CellTimeoutError" in str(nb.cells[1].outputs)
    assert nb.cells[2].outputs[0]["ename"] == "KernelStopped"
    assert "time limit" in nb.cells[2].outputs[0]["evalue"]


@pytest.mark.parametrize("kernel", [sandbox.KERNEL_NAME, forkserver.KERNEL_NAME])
def test_a_grading_kernel_gets_the_clients_arguments_and_keeps_no_history(tmp_path, kernel):
    """Execute.extra_arguments reach the kernel (the sandbox writes its own connection
    file), and the history is in memory, as nbclient makes it for stock kernels."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "ip = get_ipython(); print(ip.history_manager.hist_file, ip.config.InlineBackend)")])
    NotebookClient(nb, kernel_name=kernel, timeout=60,
                   extra_arguments=["--InlineBackend.figure_formats=svg"],
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = text(nb, 0)
    assert printed.startswith(":memory: ") and "'figure_formats': " in printed, printed
    assert "svg" in printed


def test_without_connection_file_keeps_every_other_argument():
    assert sandbox._without_connection_file(
        ["-f", "/host/kernel.json", "--HistoryManager.hist_file=:memory:", "--f=/x.json",
         "--InlineBackend.figure_formats=svg"]) == [
        "--HistoryManager.hist_file=:memory:", "--InlineBackend.figure_formats=svg"]


def test_one_sandbox_serves_kernel_after_kernel(tmp_path):
    """Reset between kernels keeps the sandbox (a new one costs the torch import again)."""
    run(["print(1)"], tmp_path)
    first = sandbox.Sandbox.current()
    run(["print(2)"], tmp_path)
    assert sandbox.Sandbox.current() is first and first.process.poll() is None, \
        f"replaced: {sandbox.Sandbox.last_replaced}"


def test_a_sandbox_whose_server_died_is_replaced_and_the_reason_logged(tmp_path, caplog):
    run(["print(1)"], tmp_path)
    first = sandbox.Sandbox.current()
    first.process.kill()
    first.process.wait()
    with caplog.at_level(logging.INFO):
        assert text(run(["print(2)"], tmp_path), 0).strip() == "2"
    box = sandbox.Sandbox.current()
    assert box is not first
    assert sandbox.Sandbox.last_replaced == "its server exited with status -9"
    assert "Building a new sandbox: its server exited" in caplog.text
    # The log says which limits hold: on these cgroup v1 machines, the cgroups as root and
    # rlimits for an ordinary user (test_limits covers cgroup v2).
    assert f"limits: {box.limits.describe()}" in caplog.text
    if not (limits.CGROUP_ROOT / "cgroup.controllers").exists():
        assert box.limits.kind == ("cgroup v1" if os.geteuid() == 0 else "rlimits")


@pytest.mark.skipif(not limits.CgroupV1.usable(), reason="cgroup v1 needs root here")
def test_cgroups_v1_of_killed_graders_are_removed_and_live_ones_kept():
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale, live = (limits.CgroupV1(f"{pid}-testonly", 2 ** 30, 64)
                   for pid in (dead.pid, os.getpid()))
    try:
        assert not any(p.exists() for p in stale.paths.values())  # the second removed it
        assert all(p.exists() for p in live.paths.values())
    finally:
        stale.remove()
        live.remove()


# ---- nothing of one kernel reaches the next: deep trees, shared memory, IPC -----------------

DEEP = """import os
def deep(top, levels=3000, name="d" * 100):
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for level in range(levels):
        os.mkdir(name, dir_fd=fd)
        os.symlink("/tmp", "link", dir_fd=fd)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        if level % 500 == 499:
            os.fchmod(fd, 0)  # locked, as a kernel may leave them
        os.close(fd)
        fd = child
    os.close(os.open("bottom", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=fd))
    os.fchmod(fd, 0)
    os.close(fd)
for top in (".", "/tmp", "/dev/shm"):
    deep(top)
os.chmod("..", 0)  # the sandbox's folder itself
print(sum(range(10)))"""

SEEN = """import os
print(sorted(os.listdir(".")), os.listdir("/dev/shm"),
      [n for n in os.listdir("/tmp") if n.startswith("d")])"""


def test_deep_trees_in_the_folder_tmp_and_dev_shm_do_not_reach_the_next_kernel(tmp_path):
    """3000 folders deep (paths far beyond PATH_MAX), some locked, a link in each: the reset
    removes them all, the same sandbox serves the next kernel, which sees none of it."""
    (tmp_path / "data.txt").write_text("the student's own file")
    assert text(run([DEEP], tmp_path), 0).strip() == "45"
    first = sandbox.Sandbox.current()
    replaced = sandbox.Sandbox.last_replaced
    assert text(run([SEEN], tmp_path), 0).strip() == "['data.txt'] [] []"
    assert sandbox.Sandbox.current() is first and sandbox.Sandbox.last_replaced == replaced
    assert oct(first.directory.stat().st_mode & 0o777) == "0o700"


def test_stopping_a_sandbox_removes_its_deep_folders(tmp_path, caplog):
    assert text(run([DEEP], tmp_path), 0).strip() == "45"
    box = sandbox.Sandbox.current()
    sandbox.Sandbox.stop_current()
    assert not box.directory.exists() and not box.control.exists()
    assert box.limits.processes() == set()
    # Every process went at once: none was still counted (bubblewrap, killed but not yet
    # reaped, once was, with rlimits: 10 s lost at the end of every grading process).
    assert "Stopping a sandbox left" not in caplog.text


PIN = """import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
IPC_CREAT, IPC_NOWAIT = 0o1000, 0o4000
segment = libc.shmget(0x4c4c, 400 * 2 ** 20, IPC_CREAT | 0o666)
ctypes.memset(libc.shmat(segment, None, 0), 1, 400 * 2 ** 20)  # 400 MiB, touched
semaphores = libc.semget(0x4c4d, 8, IPC_CREAT | 0o666)
queue = libc.msgget(0x4c4e, IPC_CREAT | 0o666)
class Message(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 8192)]
for _ in range(2):
    libc.msgsnd(queue, ctypes.byref(Message(1, b"x" * 8192)), 8192, IPC_NOWAIT)
mq = libc.mq_open(b"/convcourse-left", os.O_CREAT | os.O_RDWR, 0o666, None)
with open("/dev/shm/pinned", "wb") as out:  # with the segment, 1.4 GiB of the 2 GiB limit
    for _ in range(1000):
        out.write(b"\\1" * 2 ** 20)
os.close(os.open("/dev/shm/convcourse-left", os.O_CREAT | os.O_RDWR, 0o666))
rows = [len(open(f"/proc/sysvipc/{t}").read().splitlines()) - 1 for t in ("shm", "sem", "msg")]
print(min(segment, semaphores, queue, mq) >= 0, rows, sorted(os.listdir("/dev/shm")))"""

FIND = """import ctypes, os, torch
libc = ctypes.CDLL(None, use_errno=True)
def why(result):
    return os.strerror(ctypes.get_errno()) if result == -1 else result
print([len(open(f"/proc/sysvipc/{t}").read().splitlines()) - 1 for t in ("shm", "sem", "msg")],
      why(libc.shmget(0x4c4c, 0, 0)), why(libc.semget(0x4c4d, 0, 0)), why(libc.msgget(0x4c4e, 0)),
      why(libc.mq_open(b"/convcourse-left", os.O_RDONLY)), os.listdir("/dev/shm"))
print(int(torch.ones(2 ** 28).sum()))  # 1 GiB: there is room again"""

GONE = "No such file or directory"


def test_ipc_objects_and_shared_memory_do_not_reach_the_next_kernel(tmp_path):
    """A kernel pins 1.4 GiB of the 2 GiB limit in /dev/shm files and a System V segment,
    and leaves a semaphore set, a message queue and a POSIX message queue: each kernel has
    its own IPC namespace and /dev/shm, so the next kernel finds none, by table, key or name,
    and has its whole memory limit."""
    first = run([PIN], tmp_path, timeout=120)
    assert text(first, 0).strip() == \
        "True [1, 1, 1] ['convcourse-left', 'pinned']", text(first, 0)
    box = sandbox.Sandbox.current()
    replaced = sandbox.Sandbox.last_replaced
    after = run([FIND], tmp_path, timeout=120)
    assert text(after, 0).strip().split("\n") == [
        f"[0, 0, 0] {GONE} {GONE} {GONE} {GONE} []", str(2 ** 28)]
    assert sandbox.Sandbox.current() is box and sandbox.Sandbox.last_replaced == replaced
    assert box.limits.shmem() < box.shmem_at_start + sandbox.SHMEM_SLACK


def test_kernels_get_namespaces_of_their_own_and_no_capability(tmp_path):
    nb = run(["import os\n"
              "print(os.readlink('/proc/self/ns/ipc'), os.readlink('/proc/self/ns/user'), "
              "open('/proc/self/uid_map').read().split())\n"
              "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('Cap')])\n"
              "print([l.split()[4] for l in open('/proc/self/mountinfo') "
              "if l.split()[5].split(',')[0] == 'rw' "
              "and l.split(' - ')[1].split()[0] not in ('proc', 'devpts', 'devtmpfs')])"],
             tmp_path)
    namespaces, capabilities, writable = text(nb, 0).strip().split("\n")
    ipc, user, uid_map = namespaces.split(" ", 2)
    box = sandbox.Sandbox.current()
    server = psutil.Process(box.process.pid).children()[0].pid  # bubblewrap's child, pid 1
    assert ipc != os.readlink(f"/proc/{server}/ns/ipc")
    assert user != os.readlink(f"/proc/{server}/ns/user")
    assert eval(uid_map) == ["1000", "1000", "1"]  # itself, nobody else
    assert set(eval(capabilities)) == {"0000000000000000"}
    # Writable: /tmp and the sandbox's folder (the reset empties both) and /dev/shm (its own).
    assert sorted(eval(writable)) == sorted(["/tmp", str(box.directory), "/dev/shm"])


def test_the_reset_reports_ipc_objects_left_in_the_sandboxs_namespace(tmp_path):
    """A kernel cannot reach the sandbox's own IPC namespace: check the check, in a process
    isolated as kernels are (here, outside bubblewrap)."""
    code = ("import ctypes\n"
            "from convgrader.kernels.inside import kernel, reset\n"
            "kernel.isolate_kernel()\n"
            "assert reset._ipc_objects() == []\n"
            "ctypes.CDLL(None).shmget(0x4c4f, 4096, 0o1000 | 0o600)\n"
            "print(reset._ipc_objects())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == \
        "['System V shared memory segment (key 0x4c4f, id 0)']", result.stderr


GRADER = """
import json, sys, time
from jupyter_client.manager import KernelManager
from convgrader.kernels import sandbox
km = KernelManager(kernel_name=sandbox.KERNEL_NAME)
km.start_kernel(cwd=sys.argv[1])
box = sandbox.Sandbox.current()
print(json.dumps({"kernel": km.provisioner.pid, "bwrap": box.process.pid,
                  "processes": sorted(box.limits.processes()),
                  "cgroups": [str(p) for p in box.limits.folders()],
                  "directory": str(box.directory)}), flush=True)
time.sleep(600)
"""


def test_no_sandboxed_kernel_outlives_its_grader(tmp_path):
    """Kill a grading process: its sandbox (bubblewrap, the server, the kernel) dies with it,
    and the next grading process removes its folder and its cgroup (if it has one)."""
    grader = subprocess.Popen([sys.executable, "-c", GRADER, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        started = json.loads(grader.stdout.readline())
        assert started["kernel"] in started["processes"]
        grader.kill()
        grader.wait()
        deadline = time.monotonic() + 10
        while any(psutil.pid_exists(p) for p in started["processes"]) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(psutil.pid_exists(p) for p in started["processes"])
        sandbox.remove_stale_folders()
        limits.choose(f"{os.getpid()}-next", 2 ** 30, 64).remove()  # as the next grader does
        assert not Path(started["directory"]).exists()
        assert not any(Path(p).exists() for p in started["cgroups"])
    finally:
        grader.kill()
        grader.wait()


def test_a_submission_folder_too_deep_to_copy_fails_alone(tmp_path):
    folder = deep = tmp_path / "deep"
    for _ in range(sandbox.MAX_SUBMISSION_DEPTH + 2):
        folder = folder / "d"
    folder.mkdir(parents=True)
    with pytest.raises(Exception, match="folders deep"):
        run(["print(1)"], deep)
    (tmp_path / "honest").mkdir()
    assert text(run(["print(2)"], tmp_path / "honest"), 0) == "2\n"


def test_a_kernel_that_moves_the_folders_leading_to_a_graders_mount_gets_a_new_sandbox(
        tmp_path, monkeypatch):
    """A venv or course under /tmp is mounted at the same path in the sandbox's /tmp; the
    folders leading to it are the sandbox's, and a kernel may rename them (the mount moves
    with them): the next kernel would not find the venv. The reset sees the mounts changed."""
    # Not under pytest's root-only folder: as root, the sandbox's account must read the venv.
    shown = Path(tempfile.mkdtemp(prefix="convcourse-test-", dir="/tmp"))
    os.chmod(shown, 0o755)
    try:
        moves_the_folders_leading_to_a_mount(shown / "course" / ".venv", tmp_path, monkeypatch)
    finally:
        shutil.rmtree(shown)


def moves_the_folders_leading_to_a_mount(extra, tmp_path, monkeypatch):
    extra.mkdir(parents=True)
    (extra / "python").write_text("the grader's")
    (tmp_path / "course").mkdir()
    monkeypatch.setattr(bwrap, "readonly_paths",
                        lambda real=bwrap.readonly_paths: real() + [str(extra)])
    sandbox.Sandbox.stop_current()
    top = str(extra).split("/")[2]  # /tmp/<top>/...
    moved = run([f"import os\nos.rename('/tmp/{top}', '/tmp/moved')\n"
                 f"print(os.path.exists({str(extra / 'python')!r}))"], tmp_path / "course")
    assert text(moved, 0).strip() == "False"
    first = sandbox.Sandbox.current()
    after = run([f"import os\nprint(open({str(extra / 'python')!r}).read())"], tmp_path)
    assert text(after, 0).strip() == "the grader's"
    assert sandbox.Sandbox.current() is not first
    assert "the sandbox's mounts changed" in sandbox.Sandbox.last_replaced
    sandbox.Sandbox.stop_current()


def test_where_kernels_cannot_have_namespaces_of_their_own_grading_refuses(monkeypatch):
    """Without nested user namespaces (here bubblewrap's --disable-userns; elsewhere a
    sysctl or an AppArmor rule), a kernel could not get its own IPC namespace and /dev/shm:
    the server says so at once (before importing torch), and no kernel starts."""
    real = bwrap.bwrap_command
    monkeypatch.setattr(sandbox, "bwrap_command",
                        lambda *a: ["bwrap", "--disable-userns"] + real(*a)[1:])
    start = time.monotonic()
    with pytest.raises(SandboxUnavailable, match="Refusing to run student code: the sandbox "
                                                 "cannot give each kernel namespaces of its own"):
        sandbox.Sandbox("2G", 64)
    assert time.monotonic() - start < 30


# ---- the kernel's identity on the host, and what it can reach of the host ----------------

def test_a_kernel_has_no_privileged_host_identity(tmp_path):
    """As root the sandbox runs as its own unprivileged account, with no supplementary group;
    as an ordinary user as that user (bubblewrap maps the kernel's uid to whoever runs it,
    and an unprivileged user namespace cannot drop groups): never as root, with no
    capability on the host."""
    with live_kernel(tmp_path) as (execute, pid):
        assert execute("import os; print(os.getuid(), os.getgid())").split() == ["1000", "1000"]
        kernel = psutil.Process(pid)
        uids, gids = kernel.uids(), kernel.gids()
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status)
    if os.geteuid() == 0:
        account = pwd.getpwnam(bwrap.KERNEL_ACCOUNT)
        expected, groups = (account.pw_uid, account.pw_gid), set()
    else:
        expected, groups = (os.geteuid(), os.getegid()), set(os.getgroups())
    assert 0 not in expected
    assert set(uids) == {expected[0]} and set(gids) == {expected[1]}
    assert {int(g) for g in fields["Groups"].split()} <= groups and 0 not in groups
    assert {fields[c].strip() for c in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")} == \
        {"0000000000000000"}


SYSCTL_WRITES = """import os
opened = []
for folder, _, files in os.walk('/proc/sys'):
    for name in files:
        try:
            os.close(os.open(os.path.join(folder, name), os.O_WRONLY))
            opened.append(os.path.join(folder, name))
        except OSError:
            pass
print(opened)
print(os.path.exists('/sys') and os.listdir('/sys'))
print(sorted(os.listdir('/etc')))"""


def test_a_kernel_can_change_no_sysctl_and_sees_only_what_it_needs_of_etc(tmp_path):
    """No file of /proc/sys opens for writing (core_pattern, drop_caches, ...), /sys is not
    there, and /etc shows the linker's, Python's, fonts' and time's files, and accounts of
    the sandbox's own: no shadow, gshadow, keys or the host's accounts."""
    nb = run([SYSCTL_WRITES, "print(open('/etc/passwd').read())", "open('/etc/shadow')"],
             tmp_path)
    opened, sys_folder, etc = text(nb, 0).strip().split("\n")
    assert opened == "[]"
    assert sys_folder == "False"
    shown = set(bwrap.ETC_SHOWN) | set(bwrap.ETC_WRITTEN)
    assert set(eval(etc)) <= shown and {"ld.so.cache", "passwd", "group"} <= set(eval(etc))
    assert [line.split(":")[0] for line in text(nb, 1).split()] == ["root", "student", "nobody"]
    assert "No such file or directory" in text(nb, 2)


def hidden_test_lines():
    """Every line of the source notebooks' hidden tests that no release notebook shows."""
    public = "".join(p.read_text() for p in (COURSE_ROOT / "release").glob("*/*.ipynb"))
    lines = set()
    for path in (COURSE_ROOT / "source").glob("*/*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            _, hidden = judge.split_hidden(cell.source)
            lines |= {line.strip() for line in hidden.splitlines() if len(line.strip()) > 15}
    return sorted(line for line in lines
                  if line not in public and json.dumps(line)[1:-1] not in public)


READ_EVERYTHING = """import json, os, stat
hidden = set(json.loads({lines!r}))
hidden |= {{json.dumps(line)[1:-1] for line in hidden}}  # as a notebook's JSON holds it
# Of the read-only system and the venv, which nothing of the course writes, the files that
# can hold a notebook, a gradebook or code; everything else whole.
THIRD_PARTY = ("/usr/", {prefix!r} + "/")
TEXT = (".ipynb", ".json", ".db", ".sqlite", ".txt", ".md", ".pth")
walked, read, found = 0, 0, []
for folder, folders, files in os.walk("/"):
    if folder in ("/proc", "/sys", "/dev/pts"):
        folders[:] = []
        continue
    for name in files:
        path = os.path.join(folder, name)
        walked += 1
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_size > 64 * 2 ** 20:
            continue
        if path.startswith(THIRD_PARTY) and not name.endswith(TEXT):
            continue
        try:
            with open(path, "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        read += 1
        for piece in data.replace("\\\\n", "\\n").splitlines():
            piece = piece.strip()  # a line, or a line of a notebook's JSON: "  code\\n",
            unquoted = piece.removeprefix('"').strip()
            if {{piece, unquoted, unquoted.removesuffix('"').rstrip()}} & hidden:
                found.append((path, piece))
print(walked, read)
print(found[:5])"""


def test_no_file_a_kernel_can_reach_holds_a_hidden_test_line(tmp_path):
    """nbgrader writes the graded notebook, its test cells restored with their hidden tests,
    into the folder it runs the kernel in: the kernel's copy of the folder has the student's
    other files, and no notebook. The kernel then reads every file it can reach."""
    lines = hidden_test_lines()
    assert len(lines) > 100
    notebook = COURSE_ROOT / "source" / "01_multi_input_channels" / "01_multi_input_channels.ipynb"
    shutil.copy(notebook, tmp_path / notebook.name)  # as autograde leaves it, hidden tests in
    (tmp_path / "data.txt").write_text("the student's own file")
    nb = run(["import os; print(sorted(os.listdir('.')))",
              READ_EVERYTHING.format(lines=json.dumps(lines), prefix=sys.prefix)],
             tmp_path, timeout=300)
    assert text(nb, 0).strip() == "['data.txt']"
    counts, found = text(nb, 1).strip().split("\n")
    walked, read = map(int, counts.split())
    assert walked > 10_000 and read > 1000, counts
    assert found == "[]"
