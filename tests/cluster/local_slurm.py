"""A real single-node SLURM cluster on 127.0.0.1 for the tests: munged, slurmctld and slurmd started by hand
(no init system needed) with every file they write (config, state, spool, logs, pid files, munge key and
socket) under one scratch folder, four fake GPUs as GRES, and memory as a consumable, enforced resource.

    python tests/cluster/local_slurm.py up DIR      # prints the SLURM_CONF to export
    python tests/cluster/local_slurm.py down DIR

Needs Debian's slurmctld, slurmd, slurm-client and munge (`apt-get install --no-install-recommends ...`) and
root (slurmd runs jobs as their submitting user). Settings, each for a reason (Slurm 22.05):
- the node line is `slurmd -C`'s own (a CPU count alone is "reconfigured socket/core boundaries");
- proctrack/linuxproc and task/none: no cgroups needed; jobacct_gather/linux with OverMemoryKill enforces
  `--mem` by polling each step's memory every second (the scheduler's reason then reaches the job's log);
- no accounting: nothing to run beside the two daemons (so `sacct` sees nothing: status comes from squeue);
- NoInAddrAny/NoCtldInAddrAny: the daemons listen on 127.0.0.1 only, which needs the hostname to resolve to
  127.x (checked: `problem()` says why a machine cannot run it);
- gres.conf names four character devices (symlinks to /dev/null): a File-less count makes the node INVAL,
  plain files are "not a valid character or block device".
A job's step loses SLURM_CONF (the executor plugin strips SLURM_* before its inner srun), so the inner srun
reads /etc/slurm/slurm.conf: linked to ours when no such file exists, removed again by stop()."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
GPUS = 4
PARTITION = "gpu"  # the partition profiles/slurm asks for


def problem() -> str | None:
    """Why this machine cannot run the local cluster, or None."""
    missing = [d for d in DAEMONS if shutil.which(d) is None and not Path("/usr/sbin", d).exists()]
    if missing:
        return (f"{', '.join(missing)} not installed (apt-get install --no-install-recommends slurmctld slurmd "
                "slurm-client munge)")
    if os.geteuid() != 0:
        return "the local SLURM cluster needs root (slurmd runs each job as its submitting user)"
    if DEFAULT_CONF.exists():  # a dangling link (a test session that was killed) does not count
        return (f"{DEFAULT_CONF} exists (a real cluster's, or another test cluster's): the jobs' inner srun "
                "would read it instead of the local cluster's configuration")
    address = _host_address()
    if not address.startswith("127."):
        return f"hostname {socket.gethostname()!r} resolves to {address}, not 127.x: the daemons bind to loopback"
    return None


def _host_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError as e:
        return f"nothing ({e})"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sbin(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class LocalSlurm:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.conf = self.root / "etc" / "slurm.conf"
        self.host = socket.gethostname()
        self.pids: dict[str, int] = {}
        self.linked_default = False

    @property
    def env(self) -> dict[str, str]:
        """This process's environment pointed at the cluster (SLURM_* of an enclosing allocation removed)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        return {**env, "SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, check=True, timeout=30) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, check=check, timeout=timeout)

    # --- set-up

    def _write_config(self) -> None:
        for d in ("etc", "state", "spool", "log", "run", "munge", "dev"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o755)  # clients need to reach the socket
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
            os.chmod(key, 0o400)
        devices = []
        for i in range(GPUS):
            dev = self.root / "dev" / f"fake-gpu{i}"
            if not dev.is_symlink():
                dev.symlink_to("/dev/null")
            devices.append(str(dev))
        node = self._node_line()
        r = self.root
        self.conf.write_text("\n".join([
            "ClusterName=peftbench",
            f"SlurmctldHost={self.host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={r}/munge/munge.socket",
            f"StateSaveLocation={r}/state",
            f"SlurmdSpoolDir={r}/spool",
            f"SlurmctldPidFile={r}/run/slurmctld.pid",
            f"SlurmdPidFile={r}/run/slurmd.pid",
            f"SlurmctldLogFile={r}/log/slurmctld.log",
            f"SlurmdLogFile={r}/log/slurmd.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "JobAcctGatherType=jobacct_gather/linux",
            "JobAcctGatherFrequency=task=1",
            "JobAcctGatherParams=OverMemoryKill",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "MailProg=/bin/true",
            "MinJobAge=300",
            "ReturnToService=2",
            "KillWait=5",
            "CommunicationParameters=NoInAddrAny,NoCtldInAddrAny",
            "GresTypes=gpu",
            f"{node} Gres=gpu:{GPUS} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        (self.root / "etc" / "gres.conf").write_text(
            "AutoDetect=off\n" + "".join(f"Name=gpu File={d}\n" for d in devices))

    def _node_line(self) -> str:
        out = subprocess.run([_sbin("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
        line = next(ln for ln in out.splitlines() if ln.startswith("NodeName="))
        return f"{line} NodeAddr=127.0.0.1"

    def _start(self, name: str, *args: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        proc = subprocess.Popen([_sbin(name), *args], env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.pids[name] = proc.pid
        (self.root / "run" / f"{name}.started").write_text(str(proc.pid))

    def start(self, timeout_s: float = 30) -> LocalSlurm:
        if (why := problem()) is not None:
            raise RuntimeError(f"cannot start a local SLURM cluster: {why}")
        self._write_config()
        if DEFAULT_CONF.is_symlink() and not DEFAULT_CONF.exists():
            DEFAULT_CONF.unlink()  # left dangling by a killed session
        if not DEFAULT_CONF.exists():
            DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
            DEFAULT_CONF.symlink_to(self.conf)
            self.linked_default = True
            (self.root / "run" / "linked-default").write_text(str(DEFAULT_CONF))
        m = self.root / "munge"
        self._start("munged", "-F", "--force", f"--key-file={m}/munge.key", f"--socket={m}/munge.socket",
                    f"--pid-file={m}/munged.pid", f"--log-file={self.root}/log/munged.log",
                    f"--seed-file={m}/munge.seed")
        self._wait(lambda: (m / "munge.socket").exists(), timeout_s, "munged")
        self._start("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._start("slurmd", "-D", "-f", str(self.conf))
        self._wait(self.idle, timeout_s, "the node to become idle")
        return self

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            dead = [n for n, pid in self.pids.items() if not _alive(pid)]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                                 for p in sorted((self.root / "log").glob("*")) if p.is_file())
                self.stop()
                raise RuntimeError(f"local SLURM cluster: {what} not ready "
                                   f"({'exited: ' + ', '.join(dead) if dead else f'after {timeout_s} s'})\n{logs}")
            time.sleep(0.2)

    # --- state

    def node_state(self) -> str:
        done = self.run("sinfo", "-h", "-n", self.host, "-o", "%T", check=False)
        return done.stdout.strip().lower() if done.returncode == 0 else ""

    def idle(self) -> bool:
        return self.node_state() == "idle"

    def set_node(self, state: str, reason: str = "test") -> None:
        extra = [f"reason={reason}"] if state.upper() in ("DRAIN", "DOWN") else []
        self.run("scontrol", "update", f"nodename={self.host}", f"state={state}", *extra)

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller still knows (finished ones stay MinJobAge = 300 s), as `scontrol show job`
        key=value records."""
        out = self.run("scontrol", "show", "job", "--oneliner", check=False).stdout
        return [_record(line) for line in out.splitlines() if line.startswith("JobId=")]

    # --- teardown

    def stop(self) -> None:
        """Cancel the cluster's jobs (their steps would outlive slurmd), stop only the daemons this object
        started (by pid, their whole sessions), and undo the link."""
        if _alive(self.pids.get("slurmctld", -1)):
            jobs = self.run("squeue", "-h", "-o", "%i", check=False).stdout.split()
            if jobs:
                self.run("scancel", *jobs, check=False)
                deadline = time.monotonic() + 15
                while self.run("squeue", "-h", "-o", "%i", check=False).stdout.split() and \
                        time.monotonic() < deadline:
                    time.sleep(0.3)
        for name in reversed(DAEMONS):
            pid = self.pids.pop(name, None)
            if pid is not None:
                _terminate(pid)
        if self.linked_default and DEFAULT_CONF.is_symlink() and DEFAULT_CONF.resolve() == self.conf:
            DEFAULT_CONF.unlink()
            self.linked_default = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _record(line: str) -> dict[str, str]:
    fields = {}
    for token in line.split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child (the `down` command): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return waited == 0


def _terminate(pid: int, timeout_s: float = 10) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _alive(pid):
            return


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    cluster = LocalSlurm(args.dir)
    if args.action == "up":
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}")
        return
    for name in DAEMONS:  # `down` from another process: the pids `up` recorded
        started = cluster.root / "run" / f"{name}.started"
        if started.exists():
            cluster.pids[name] = int(started.read_text())
            started.unlink()
    cluster.linked_default = (cluster.root / "run" / "linked-default").exists()
    cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
