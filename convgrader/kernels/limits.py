"""What caps a grading sandbox's memory and processes: the best the machine offers.

``choose()`` takes the first of these that works here, and ``describe()`` says which in the
grader's log:

1. **cgroup v2** (the default of current Debian, Ubuntu, Fedora, RHEL). As root, a cgroup
   under ``/sys/fs/cgroup/convcourse/``. As an ordinary user, a child of the grader's own
   cgroup when that one is delegated to the user: ``systemd-run --user --scope -p
   Delegate=yes make grade`` makes one, and so do container runtimes and JupyterHub spawners
   that delegate. The grader then moves the processes of its cgroup into a leaf
   (``convcourse-grader``), because cgroup v2 lets a cgroup with processes of its own hand
   no controller to its children, enables memory and pids for the children, and gives each
   sandbox a child with ``memory.max`` and ``pids.max``.
2. **cgroup v1** as root: ``/sys/fs/cgroup/{memory,pids}/convcourse/``.
3. **rlimits** on each kernel, where no cgroup can be had: address space (the fork server's
   own, which a forked kernel shares, plus the memory limit; torch and numpy raise
   MemoryError/RuntimeError when it is reached), threads and processes per kernel
   (RLIMIT_NPROC: since Linux 5.14 it counts per user namespace, and each kernel has its
   own), file size, no core files; the sandbox's /tmp and each kernel's /dev/shm are
   tmpfs of bounded size. What rlimits cannot do: cap the sum over a kernel's processes,
   or see shared memory a kernel leaves; the log says so.

In every case a memory limit counts only what the kernels add: the fork server has
imported torch before it, and kernels share those pages.
"""
import os
import signal
import time
from pathlib import Path

import psutil

from convgrader import fs

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
PARENT = "convcourse"  # v1 and v2 as root: the sandboxes' cgroups live under this one
GRADER_LEAF = "convcourse-grader"  # v2 delegated: where the grader's own processes go
CONTROLLERS = ("memory", "pids")


def _unified() -> bool:
    """Whether /sys/fs/cgroup is a cgroup v2 hierarchy."""
    return (CGROUP_ROOT / "cgroup.controllers").exists()


class Limits:
    """The common part: processes of the sandbox, killing them, stale cgroups."""

    kind = "none"
    # Shared memory and kernel memory charged to the sandbox, where a cgroup counts them.
    counts_memory = False

    def __init__(self, name: str, memory_limit: int, max_processes: int) -> None:
        self.name, self.memory_limit, self.max_processes = name, memory_limit, max_processes

    def enter(self) -> None:
        """In the sandbox's first process, before it runs bubblewrap: join the limits."""

    def attach(self, pid: int) -> None:
        """The sandbox's first process (bubblewrap) was started as ``pid``."""

    def limit_memory(self) -> None:
        """The sandbox's server has imported torch: the memory limit is what kernels may
        add to what it holds now."""

    def kernel_rlimits(self) -> dict[str, int]:
        """What each kernel sets on itself after the fork (``inside.kernel.apply_kernel_rlimits``)."""
        return {"CORE": 0}

    def shm_size(self) -> int | None:
        """Bytes of each tmpfs in the sandbox (/tmp, a kernel's /dev/shm); None: unbounded,
        as the cgroup charges what they hold."""
        return None

    def processes(self) -> set[int]:
        raise NotImplementedError

    def folders(self) -> list[Path]:
        """The sandbox's cgroup folders (none for rlimits)."""
        return []

    def kill_all(self, timeout: float = 10) -> bool:
        """SIGKILL every process of the sandbox until none is left; whether none is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.processes()
            if not pids:
                return True
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        return not self.processes()

    def shmem(self) -> int:
        return 0

    def kernel_memory(self) -> int:
        return 0

    def remove(self) -> None:
        pass

    def describe(self) -> str:
        raise NotImplementedError


def _mib(n: int) -> str:
    return f"{n / 2 ** 20:.0f} MiB"


def _rmdir_when_empty(path: Path, tries: int = 50) -> None:
    for _ in range(tries):  # the processes may take a moment to leave
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


def _remove_stale(parent: Path) -> None:
    """Remove the cgroups under ``parent`` of grading processes that were killed before
    removing theirs (named "<pid>-<random>"); one that still holds processes stays."""
    for path in parent.glob("*-*"):
        if fs.owner_is_gone(path.name):
            try:
                path.rmdir()
            except OSError:
                pass


class CgroupV1(Limits):
    """One cgroup per controller, /sys/fs/cgroup/<controller>/convcourse/<name> (root)."""

    kind = "cgroup v1"
    counts_memory = True

    @staticmethod
    def usable() -> bool:
        return all(os.access(CGROUP_ROOT / c, os.W_OK) for c in CONTROLLERS) and \
            not _unified()

    def __init__(self, name: str, memory_limit: int, max_processes: int) -> None:
        super().__init__(name, memory_limit, max_processes)
        self.paths = {c: CGROUP_ROOT / c / PARENT / name for c in CONTROLLERS}
        for controller in CONTROLLERS:
            _remove_stale(CGROUP_ROOT / controller / PARENT)
        for path in self.paths.values():
            path.mkdir(parents=True, exist_ok=True)
        self.write("pids", "pids.max", max_processes)

    def write(self, controller: str, name: str, value: int) -> None:
        (self.paths[controller] / name).write_text(str(value))

    def read(self, controller: str, name: str) -> int:
        return int((self.paths[controller] / name).read_text())

    def enter(self) -> None:
        for path in self.paths.values():
            (path / "cgroup.procs").write_text(str(os.getpid()))

    def limit_memory(self) -> None:
        self.write("memory", "memory.limit_in_bytes",
                   self.read("memory", "memory.usage_in_bytes") + self.memory_limit)

    def folders(self) -> list[Path]:
        return list(self.paths.values())

    def processes(self) -> set[int]:
        pids: set[int] = set()
        for path in self.paths.values():
            try:
                pids |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
            except FileNotFoundError:
                pass
        return pids

    def shmem(self) -> int:
        return _stat(self.paths["memory"] / "memory.stat", "shmem")

    def kernel_memory(self) -> int:
        try:
            return self.read("memory", "memory.kmem.usage_in_bytes")
        except OSError:
            return 0

    def remove(self) -> None:
        for path in self.paths.values():
            _rmdir_when_empty(path)

    def describe(self) -> str:
        return (f"cgroup v1 {self.paths['memory']}: memory {_mib(self.memory_limit)} beyond "
                f"the preloaded server, {self.max_processes} processes and threads")


def _stat(path: Path, key: str) -> int:
    for line in path.read_text().splitlines():
        name, value = line.split()
        if name == key:
            return int(value)
    return 0


def own_cgroup() -> Path | None:
    """This process's cgroup v2 folder, from /proc/self/cgroup ("0::/path"); None on v1."""
    for line in PROC_SELF_CGROUP.read_text().splitlines():
        hierarchy, _, path = line.split(":", 2)
        if hierarchy == "0":
            return CGROUP_ROOT / path.lstrip("/")
    return None


class CgroupV2(Limits):
    """A cgroup v2 child per sandbox: under /sys/fs/cgroup/convcourse as root, else under
    the grader's own delegated cgroup."""

    kind = "cgroup v2"
    counts_memory = True

    @classmethod
    def parent(cls) -> tuple[Path | None, str | None]:
        """Where the sandboxes' cgroups go, set up for them; or None with the reason."""
        if not _unified():
            return None, "no cgroup v2 here"
        if os.geteuid() == 0:
            parent = CGROUP_ROOT / PARENT
            try:
                _enable(CGROUP_ROOT)
                parent.mkdir(exist_ok=True)
                _enable(parent)
                return parent, None
            except OSError as error:  # e.g. in a container whose root cgroup has processes
                reason = f"{parent}: {error}"
        else:
            reason = None
        own = own_cgroup()
        if own is None:
            return None, reason or "this process is in no cgroup v2"
        if own.name == GRADER_LEAF:  # an earlier grader moved the processes there
            own = own.parent
        missing = set(CONTROLLERS) - set((own / "cgroup.controllers").read_text().split())
        if missing:
            return None, (f"the controllers {', '.join(sorted(missing))} are not delegated to "
                          f"{own}")
        if not all(os.access(p, os.W_OK) for p in
                   (own, own / "cgroup.procs", own / "cgroup.subtree_control")):
            return None, (f"{own} is not delegated to this user (run the grader in a "
                          "delegated cgroup: systemd-run --user --scope -p Delegate=yes ...)")
        try:
            _enable(own, leaf=own / GRADER_LEAF)
        except OSError as error:
            return None, f"cannot enable memory and pids for the children of {own}: {error}"
        return own, None

    def __init__(self, name: str, memory_limit: int, max_processes: int, parent: Path) -> None:
        super().__init__(name, memory_limit, max_processes)
        _remove_stale(parent)
        self.path = parent / name
        self.path.mkdir(exist_ok=True)
        (self.path / "pids.max").write_text(str(max_processes))

    def enter(self) -> None:
        (self.path / "cgroup.procs").write_text("0")  # "0": the writing process

    def limit_memory(self) -> None:
        current = int((self.path / "memory.current").read_text())
        (self.path / "memory.max").write_text(str(current + self.memory_limit))
        if (self.path / "memory.swap.max").exists():  # no swapping past the limit
            (self.path / "memory.swap.max").write_text("0")

    def folders(self) -> list[Path]:
        return [self.path]

    def processes(self) -> set[int]:
        try:
            return {int(p) for p in (self.path / "cgroup.procs").read_text().split()}
        except FileNotFoundError:
            return set()

    def shmem(self) -> int:
        return _stat(self.path / "memory.stat", "shmem")

    def kernel_memory(self) -> int:
        stat = self.path / "memory.stat"
        kernel = _stat(stat, "kernel")  # Linux 5.18+; before, its parts
        return kernel or sum(_stat(stat, k) for k in
                             ("kernel_stack", "pagetables", "percpu", "sock", "slab"))

    def remove(self) -> None:
        _rmdir_when_empty(self.path)

    def describe(self) -> str:
        return (f"cgroup v2 {self.path}: memory {_mib(self.memory_limit)} beyond the "
                f"preloaded server, {self.max_processes} processes and threads")


def _enable(cgroup: Path, leaf: Path | None = None) -> None:
    """Hand memory and pids to the children of ``cgroup``. cgroup v2 refuses while the
    cgroup holds processes of its own (but at the root): those move to ``leaf`` first."""
    def enabled() -> bool:  # Linux lists "memory pids"; a "+" is stripped for laid-out copies too
        listed = (cgroup / "cgroup.subtree_control").read_text().split()
        return set(CONTROLLERS) <= {name.lstrip("+") for name in listed}

    refused: OSError | None = None
    for _ in range(10):  # a process started in ``cgroup`` meanwhile makes the write fail
        if enabled():
            return
        if leaf is not None:
            leaf.mkdir(exist_ok=True)
            for pid in (cgroup / "cgroup.procs").read_text().split():
                try:
                    (leaf / "cgroup.procs").write_text(pid)
                except ProcessLookupError:
                    pass
        try:
            (cgroup / "cgroup.subtree_control").write_text(
                " ".join(f"+{c}" for c in CONTROLLERS))
        except OSError as error:
            refused = error
            time.sleep(0.01)
    if not enabled():
        raise refused or OSError(f"{cgroup}: memory and pids not enabled for its children")


class Rlimits(Limits):
    """No cgroup: each kernel limits itself after the fork (see the module's docstring)."""

    kind = "rlimits"

    def __init__(self, name: str, memory_limit: int, max_processes: int,
                 reason: str | None) -> None:
        super().__init__(name, memory_limit, max_processes)
        self.reason = reason
        self.server: int | None = None
        self.seen: set[int] = set()

    def attach(self, pid: int) -> None:
        self.server = pid

    def kernel_rlimits(self) -> dict[str, int]:
        return {"AS": self.memory_limit, "NPROC": self.max_processes,
                "FSIZE": self.memory_limit, "CORE": 0}

    def shm_size(self) -> int | None:
        return self.memory_limit

    def processes(self) -> set[int]:
        """bubblewrap's process and everything under it (seen once, followed until gone:
        when bubblewrap dies first, its children are nobody's)."""
        if self.server is not None:
            try:
                root = psutil.Process(self.server)
                self.seen |= {root.pid} | {p.pid for p in root.children(recursive=True)}
            except psutil.NoSuchProcess:
                pass
        self.seen = {pid for pid in self.seen if _alive(pid)}
        return set(self.seen)

    def describe(self) -> str:
        return (f"rlimits only ({self.reason}): per kernel process {_mib(self.memory_limit)} "
                f"of address space beyond the preloaded server, {self.max_processes} "
                f"processes and threads per kernel, files up to {_mib(self.memory_limit)}, "
                f"tmpfs /tmp and /dev/shm of {_mib(self.memory_limit)}; the sum over a "
                "kernel's processes is not capped")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie (bubblewrap, killed, until the grader reaps it) is gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def choose(name: str, memory_limit: int, max_processes: int) -> Limits:
    """The limits for a new sandbox called ``name``: cgroup v2, v1 as root, else rlimits."""
    parent, v2_reason = CgroupV2.parent()
    if parent is not None:
        return CgroupV2(name, memory_limit, max_processes, parent)
    if CgroupV1.usable():
        return CgroupV1(name, memory_limit, max_processes)
    if _unified():
        reason = v2_reason
    elif os.geteuid() == 0:
        reason = "the cgroup v1 controllers memory and pids are not writable"
    else:
        reason = "cgroup v1 here, whose limits need root"
    return Rlimits(name, memory_limit, max_processes, reason)
