"""Which limits a sandbox gets (convgrader/kernels/limits.py).

These machines run cgroup v1, so the cgroup v2 paths are checked against a folder laid out
as Linux and systemd lay out a v2 hierarchy (a delegated user scope, the root); the rlimits
are checked on a real process, and test_sandbox runs whole sandboxes under each."""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

from convgrader.kernels import limits

GIB = 2 ** 30
SCOPE = "user.slice/user-1000.slice/user@1000.service/app.slice/grade.scope"


def write(path, text=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def v2(tmp_path, monkeypatch):
    """A cgroup v2 root with memory and pids delegated to the scope this process is in."""
    root = tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
    write(root / "cgroup.subtree_control", "cpu memory pids\n")
    scope = root / SCOPE
    write(scope / "cgroup.controllers", "memory pids\n")
    write(scope / "cgroup.subtree_control", "\n")
    write(scope / "cgroup.procs", f"{os.getpid()}\n{os.getppid()}\n")
    write(tmp_path / "self-cgroup", f"0::/{SCOPE}\n")
    monkeypatch.setattr(limits, "CGROUP_ROOT", root)
    monkeypatch.setattr(limits, "PROC_SELF_CGROUP", tmp_path / "self-cgroup")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    return scope


def test_a_delegated_scope_gets_a_leaf_for_the_grader_and_a_child_per_sandbox(v2):
    chosen = limits.choose("4242-abcd", 2 * GIB, 512)
    assert chosen.kind == "cgroup v2" and chosen.path == v2 / "4242-abcd"
    # The scope's processes left for the leaf before memory and pids went to its children.
    assert (v2 / limits.GRADER_LEAF).is_dir()
    assert (v2 / limits.GRADER_LEAF / "cgroup.procs").read_text() == str(os.getppid())
    assert (v2 / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (chosen.path / "pids.max").read_text() == "512"
    # The limit counts what kernels add to the preloaded server's memory.
    write(chosen.path / "memory.current", "800000000\n")
    write(chosen.path / "memory.swap.max", "max\n")
    chosen.limit_memory()
    assert (chosen.path / "memory.max").read_text() == str(800000000 + 2 * GIB)
    assert (chosen.path / "memory.swap.max").read_text() == "0"
    assert chosen.kernel_rlimits() == {"CORE": 0} and chosen.shm_size() is None
    assert str(chosen.path) in chosen.describe() and "2048 MiB" in chosen.describe()


def test_the_next_grader_started_from_the_leaf_uses_the_scope_again(v2, tmp_path):
    limits.choose("1-first", GIB, 64)
    write(tmp_path / "self-cgroup", f"0::/{SCOPE}/{limits.GRADER_LEAF}\n")
    second = limits.choose("2-second", GIB, 64)
    assert second.path == v2 / "2-second"


def test_the_memory_counted_is_the_cgroups(v2):
    chosen = limits.choose("4242-abcd", GIB, 64)
    write(chosen.path / "memory.stat", "anon 100\nshmem 4096\nkernel 777\nslab 5\n")
    assert chosen.shmem() == 4096 and chosen.kernel_memory() == 777
    write(chosen.path / "memory.stat", "shmem 1\nkernel_stack 10\nslab 20\nsock 3\n")
    assert chosen.kernel_memory() == 33  # before Linux 5.18: its parts


def test_controllers_not_delegated_mean_rlimits_with_the_reason(v2):
    write(v2 / "cgroup.controllers", "pids\n")
    chosen = limits.choose("4242-abcd", GIB, 64)
    assert chosen.kind == "rlimits"
    assert f"memory are not delegated to {v2}" in chosen.describe()
    assert chosen.kernel_rlimits() == {"AS": GIB, "NPROC": 64, "FSIZE": GIB, "CORE": 0}
    assert chosen.shm_size() == GIB


def test_root_on_cgroup_v2_uses_its_own_parent_at_the_top(v2, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    parent = limits.CGROUP_ROOT / limits.PARENT
    write(parent / "cgroup.subtree_control")  # what Linux puts in a new cgroup's folder
    chosen = limits.choose("4242-abcd", GIB, 64)
    assert chosen.path == parent / "4242-abcd"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert not (v2 / limits.GRADER_LEAF).exists()  # root moves nobody's processes


def test_stale_cgroups_of_killed_graders_go_and_live_ones_stay(v2):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (v2 / f"{dead.pid}-stale").mkdir(parents=True)
    (v2 / f"{os.getpid()}-live").mkdir()
    limits.choose("1-new", GIB, 64)
    assert not (v2 / f"{dead.pid}-stale").exists() and (v2 / f"{os.getpid()}-live").exists()


def test_a_kernels_rlimits_stop_its_memory_processes_and_files():
    """What torch does at the address-space limit: it raises, the process goes on."""
    folder = tempfile.mkdtemp(prefix="convcourse-rlimits-")  # pytest's is root's only
    os.chmod(folder, 0o777)
    script = textwrap.dedent(f"""
        import os, threading, torch
        from convgrader.kernels.inside import kernel
        kernel.apply_kernel_rlimits({{"AS": {GIB}, "NPROC": 8, "FSIZE": 2 ** 20, "CORE": 0}})
        t = torch.ones(2 ** 27)  # 512 MiB of the 1 GiB allowed
        try:
            big = torch.ones(2 ** 28)  # 1 GiB more: past the limit
            print("allocated 1 GiB more")
        except RuntimeError as error:
            print("torch refused:", "can't allocate memory" in str(error))
        del t
        small = torch.ones(2 ** 26) + 1  # 256 MiB fit
        print("256 MiB fit:", float(small[0]))
        try:
            open({folder + "/big"!r}, "wb").write(b"x" * (2 * 2 ** 20))
        except OSError as error:
            print("file refused:", error.strerror)
        threads = []
        try:
            for _ in range(50):
                threads.append(threading.Thread(target=threading.Event().wait, daemon=True))
                threads[-1].start()
        except RuntimeError:
            print("threads refused after", len(threads) - 1)
    """)
    # As an ordinary user: Linux exempts root from RLIMIT_NPROC, in any user namespace.
    # In a user namespace of its own, the count is of this process's threads only (Linux
    # 5.14+), not of every process of the user.
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] \
        if os.geteuid() == 0 else []
    as_nobody += ["unshare", "--user"]
    try:
        result = subprocess.run(as_nobody + [sys.executable, "-c", script],
                                capture_output=True, text=True, timeout=120, cwd="/",
                                env=dict(os.environ, OMP_NUM_THREADS="1"))  # as kernels have
    finally:
        shutil.rmtree(folder)
    assert result.returncode == 0, result.stderr
    said = result.stdout.splitlines()
    assert said[:3] == ["torch refused: True", "256 MiB fit: 2.0", "file refused: File too large"]
    assert said[3].startswith("threads refused after") and int(said[3].split()[-1]) < 8
