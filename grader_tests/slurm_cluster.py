"""A single-node Slurm cluster on this machine, for the tests of grading as a job array.

Debian's slurmctld, slurmd and munge (`make slurm` installs them as root), started with a
configuration of their own in a temporary folder: their own munge key and socket, ports
found free on loopback, state and logs in the folder; ``SLURM_CONF`` in ``env()`` points
Slurm's commands at it. Daemons run as root (SlurmUser=root), so the tests need root; no
cgroup is used (proctrack/linuxproc, task/none), which suits cgroup v1 and v2 alike.

    cluster = Cluster(cpus=2)
    job = cluster.submit(["--array=0-1", script, ...], cwd=course)
    cluster.wait(job)
    cluster.stop()
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ports import free_ports

DAEMONS = ("munged", "slurmctld", "slurmd")
COMMANDS = ("sbatch", "squeue", "scontrol", "sinfo")


def missing():
    """What of Slurm and munge this machine lacks (an empty list: nothing)."""
    return [name for name in DAEMONS + COMMANDS if not Path(_binary(name)).exists()]


def _binary(name):
    return shutil.which(name) or f"/usr/sbin/{name}"


CONFIG = """\
ClusterName=convcourse
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={dir}/munge.socket
CredType=cred/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerParameters=sched_interval=1
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=grading Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    """munged, slurmctld and slurmd with a configuration in a temporary folder."""

    def __init__(self, cpus=2):
        self.dir = Path(tempfile.mkdtemp(prefix="convcourse-slurm-"))
        for sub in ("state", "spool"):
            (self.dir / sub).mkdir()
        self.host = socket.gethostname().split(".")[0]
        ctld_port, slurmd_port = free_ports(2)
        self.conf = self.dir / "slurm.conf"
        # The node offers nine tenths of this machine's memory (MB), as slurmd measures it.
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2 ** 20 * 9 // 10
        self.conf.write_text(CONFIG.format(host=self.host, dir=self.dir, ctld_port=ctld_port,
                                           slurmd_port=slurmd_port, cpus=cpus, memory=memory))
        key = self.dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self._run("munged", f"--socket={self.dir}/munge.socket", f"--key-file={key}",
                  f"--pid-file={self.dir}/munged.pid", f"--log-file={self.dir}/munged.log",
                  f"--seed-file={self.dir}/munged.seed", "--force")
        self._run("slurmctld")
        self._run("slurmd")
        self._wait_for_node()

    def env(self, **extra):
        return {**os.environ, "SLURM_CONF": str(self.conf), **extra}

    def _run(self, daemon, *args):
        result = subprocess.run([_binary(daemon), *args], env=self.env(), capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{daemon} did not start: {result.stderr.strip()}\n"
                               f"{self.logs()}")

    def slurm(self, *command, check=True):
        """Run one of Slurm's commands against this cluster; its standard output."""
        result = subprocess.run(list(map(str, command)), env=self.env(), capture_output=True,
                                text=True)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, command))}: {result.stderr.strip()}")
        return result.stdout

    def _wait_for_node(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.slurm("sinfo", "-h", "-N", "-o", "%T", check=False).strip()
            if state.startswith("idle"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the node is not idle after {timeout} s: {state!r}\n{self.logs()}")

    def submit(self, arguments, cwd, env=None):
        """``sbatch --parsable`` with ``arguments``; the job id."""
        result = subprocess.run(["sbatch", "--parsable", *map(str, arguments)], cwd=cwd,
                                env=self.env(**(env or {})), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"sbatch: {result.stderr.strip()}")
        return result.stdout.strip().split(";")[0]

    def tasks(self, job):
        """{array task id: state} of a job's tasks still known to the queue."""
        out = self.slurm("squeue", "-h", "-r", "-j", job, "-o", "%K %T", check=False)
        return dict(line.split() for line in out.splitlines() if line.strip())

    def job_info(self, job_task, shown=None):
        """scontrol's fields of one job or array task (or of its ``shown`` text), as a dict."""
        fields = {}
        for word in (shown or self.slurm("scontrol", "-o", "show", "job", job_task)).split():
            key, _, value = word.partition("=")
            fields.setdefault(key, value)
        return fields

    def requeue_now(self, job_task):
        """Kill a running task and queue it again, to start as soon as its first run is
        cleaned up. Slurm holds a requeued job back for two minutes by default, so that the
        node is done with the old run; here the test waits for that itself: a task started
        while its node still completes the old run fails at launch."""
        self.slurm("scontrol", "requeue", job_task)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            shown = self.slurm("scontrol", "-o", "show", "job", job_task)
            node = self.slurm("sinfo", "-h", "-N", "-o", "%T", check=False).strip()
            if self.job_info(job_task, shown).get("JobState") == "PENDING" and \
                    "COMPLETING" not in shown and "comp" not in node:
                time.sleep(1)
                self.slurm("scontrol", "update", f"JobId={job_task}", "StartTime=now")
                return
            time.sleep(0.2)
        raise TimeoutError(f"{job_task} was not pending again, its node done, within 120 s: "
                           f"{self.job_info(job_task)}\n{self.logs()}")

    def wait(self, job, timeout=900):
        deadline = time.monotonic() + timeout
        while self.tasks(job):
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job} still queued after {timeout} s: "
                                   f"{self.tasks(job)}\n{self.logs()}")
            time.sleep(0.5)

    def logs(self):
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}"
                         for p in sorted(self.dir.glob("*.log")))

    def stop(self):
        self.slurm("scancel", "--full", "--user=root", check=False)
        for pid_file in ("slurmd.pid", "slurmctld.pid", "munged.pid"):
            try:
                pid = int((self.dir / pid_file).read_text())
                os.kill(pid, 15)
            except (OSError, ValueError):
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.1)
        shutil.rmtree(self.dir, ignore_errors=True)


def benchmark(assignments=2):
    """What the scheduler costs: the honest students of the first ``assignments``
    assignments, graded (1) by the batch grader with two workers, (2) by a Slurm array of
    two tasks of one worker each, on this machine, each against a fresh PostgreSQL
    gradebook; prints the wall times and each task's wait between sbatch and its start.

        sudo .venv/bin/python grader_tests/slurm_cluster.py      # as root, after make slurm
    """
    import sys  # run as a script, this folder is first on sys.path: the tests' modules load

    import postgres
    from course_copies import (ASSIGNMENTS, SAMPLE_CLASS, TEST_TIME_LIMITS, copy_checkout,
                               release_course, run_in)
    from convgrader.tools import sample_class
    from gradebooks import honest_rows, keep_only

    server, cluster = postgres.Server(), Cluster(cpus=2)
    try:
        seconds = {}
        for way in ("batch", "slurm"):
            db_url = server.create_database(f"bench_{way}")
            course = copy_checkout(Path(tempfile.mkdtemp(prefix="convcourse-bench-")))
            (course / ".venv").symlink_to(sys.prefix, target_is_directory=True)
            shutil.rmtree(course / "release")
            release_course(course, db_url=db_url)
            sample_class.build(SAMPLE_CLASS, course / "release", course / "submitted")
            rows = honest_rows(ASSIGNMENTS[:assignments])
            keep_only(course / "submitted", rows)
            start = time.monotonic()
            if way == "batch":
                run_in(course, sys.executable, "-m", "convgrader.batch", "--workers", "2",
                       db_url=db_url)
            else:
                (course / "logs").mkdir()
                env = {**TEST_TIME_LIMITS, "CONVCOURSE_DB_URL": db_url,
                       "PATH": f"{course}/.venv/bin:/usr/bin:/bin"}
                job = cluster.submit(["--array=0-1", "--cpus-per-task=1",
                                      "deploy/slurm/grade.sbatch"], cwd=course, env=env)
                cluster.wait(job)
                for task in ("0", "1"):
                    info = cluster.job_info(f"{job}_{task}")
                    print(f"  slurm task {task}: submitted {info['SubmitTime']}, started "
                          f"{info['StartTime']}, ended {info['EndTime']}")
            seconds[way] = time.monotonic() - start
            print(f"{way}: {len(rows)} submissions in {seconds[way]:.1f} s")
            shutil.rmtree(course, ignore_errors=True)
        print(f"the scheduler's cost: {seconds['slurm'] - seconds['batch']:+.1f} s for the "
              f"class, {(seconds['slurm'] - seconds['batch']) / 2:+.1f} s per task")
    finally:
        cluster.stop()
        server.stop()


if __name__ == "__main__":
    benchmark()
