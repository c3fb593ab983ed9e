"""Ablate's workers on a real one-node Slurm cluster (Debian's slurm-wlm and munge).

The test starts munged, slurmctld and slurmd on this machine (its own key, sockets, ports and
state, all in a scratch folder), a coordinator, and brings workers up through
`ablate slurm up`, that is through sbatch and the built-in batch script. Then:
  1. a two-job CPU sweep runs through the Slurm worker to success;
  2. a job outlasting a one-minute allocation is drained by Slurm's SIGTERM (checkpointed and
     handed back), and a second allocation resumes it to the end.
Needs root (munged and slurmd run as root here) and the daemons; in the long set. Usage:
  slurm_test.py BIN_DIR
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from wait import wait_for  # noqa: E402  (tests/support/wait.py)

BIN = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else ""
USER_TOKEN = "slurm-test-user-token-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(shutil.which("slurmctld") and shutil.which("munged") and os.geteuid() == 0,
                     "needs root and Debian's slurm-wlm and munge (make test-all installs them)")
class SlurmTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ablate-slurm-")
        cls.procs = []
        d = cls.dir
        for sub in ("state", "spool", "tokens", "work"):
            os.makedirs(os.path.join(d, sub))
        with open(os.path.join(d, "munge.key"), "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(os.path.join(d, "munge.key"), 0o600)
        subprocess.run(["munged", "--force", f"--key-file={d}/munge.key",
                        f"--socket={d}/munge.sock", f"--pid-file={d}/munged.pid",
                        f"--log-file={d}/munged.log", f"--seed-file={d}/munge.seed"], check=True)
        host = socket.gethostname().split(".")[0]
        with open(os.path.join(d, "slurm.conf"), "w") as f:
            f.write(f"""ClusterName=ablatetest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge.sock
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
KillWait=30
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
NodeName={host} CPUs={os.cpu_count()} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        os.environ["SLURM_CONF"] = os.path.join(d, "slurm.conf")
        for daemon in ("slurmctld", "slurmd"):
            with open(os.path.join(d, f"{daemon}.out"), "w") as out:
                cls.procs.append(subprocess.Popen([daemon, "-D", "-f", os.environ["SLURM_CONF"]],
                                                  stdout=out, stderr=subprocess.STDOUT))
        wait_for(lambda: "idle" in subprocess.run(["sinfo", "-h", "-o", "%t"],
                                                  capture_output=True, text=True).stdout,
                 30, "the Slurm node to be idle")

        # The coordinator, with one worker token per Slurm worker id.
        lines = [f"user {USER_TOKEN}"]
        for i in range(2):
            token = os.urandom(16).hex()
            lines.append(f"worker {token} slurm-{i}")
            with open(os.path.join(d, "tokens", f"slurm-{i}"), "w") as f:
                f.write(token)
        with open(os.path.join(d, "coordinator-tokens"), "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(f"{d}/coordinator.log", "w") as log:
            cls.procs.append(subprocess.Popen(
                [f"{BIN}/ablate-coordinator", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
                 "--db", f"{d}/ablate.db", "--ports-file", f"{d}/ports",
                 "--token-file", f"{d}/coordinator-tokens", "--lease-timeout-s", "5"],
                stderr=log))
        def read_ports():
            if not os.path.exists(f"{d}/ports"):
                return None
            with open(f"{d}/ports") as f:
                return f.read()
        ports = wait_for(read_ports, 30, "the coordinator's ports")
        grpc = [l.split("=")[1] for l in ports.split() if l.startswith("grpc=")][0]
        cls.address = f"127.0.0.1:{grpc}"

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["scancel", "--full", "-u", "root"], capture_output=True)
        for p in reversed(cls.procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        pid_file = os.path.join(cls.dir, "munged.pid")
        if os.path.exists(pid_file):
            with open(pid_file) as f:
                os.kill(int(f.read()), signal.SIGTERM)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def ablate(self, *args, check=True):
        env = dict(os.environ, ABLATE_TOKEN=USER_TOKEN)
        result = subprocess.run([f"{BIN}/ablate", "--coordinator", self.address, *args],
                                capture_output=True, text=True, env=env)
        if check:
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result.stdout

    def slurm_up(self, time_limit, grace_s, prefix):
        return self.ablate("slurm", "up", "--nodes", "1", "--time", time_limit,
                           "--grace-s", str(grace_s), "--worker-prefix", prefix,
                           "--token-dir", f"{self.dir}/tokens", "--work-dir", f"{self.dir}/work",
                           "--checkpoint-root", f"{self.dir}/checkpoints")

    def submit(self, name, jobs, steps):
        path = os.path.join(self.dir, f"{name}.yaml")
        seeds = ", ".join(str(s) for s in range(1, jobs + 1))
        with open(path, "w") as f:
            f.write(f"name: {name}\ngrid:\n  model: [tiny]\n  seed: [{seeds}]\nfixed:\n"
                    f"  steps: {steps}\n  batch_size: 4\n  context_length: 32\n"
                    f"  warmup_steps: 2\n  learning_rate: 5e-3\n  log_every: 10\n"
                    f"  eval_batches: 2\n  checkpoint_every: 50\n  cpu_threads: 1\n"
                    f"checkpoint_root: {self.dir}/checkpoints\n")
        out = self.ablate("submit", path)
        return re.search(r"submitted sweep (\S+):", out).group(1)

    def jobs(self, sweep):
        lines = self.ablate("status", sweep, "--json").splitlines()
        return json.loads(lines[0])["jobs"]

    def test_a_sweep_runs_through_slurm_workers(self):
        sweep = self.submit("two-jobs", jobs=2, steps=60)
        self.assertIn("submitted Slurm job", self.slurm_up("10", 60, "slurm"))
        jobs = wait_for(lambda: (lambda js: js if all(j.get("state") == "JOB_STATE_SUCCEEDED"
                                                        for j in js) else None)(self.jobs(sweep)),
                        240, "both jobs to succeed")
        self.assertEqual({j.get("workerId") for j in jobs}, {"slurm-0"})
        subprocess.run(["scancel", "--full", "-n", "ablate-slurm"], check=True)

    def test_an_allocation_ending_mid_run_hands_its_job_to_the_next(self):
        sweep = self.submit("long-job", jobs=1, steps=12000)
        # Two minutes, SIGTERM 30 s before the end: Slurm sends it up to a minute early, so
        # 30 to 90 s after the start, well before the job's end.
        self.slurm_up("2", 30, "slurm")
        wait_for(lambda: int(self.jobs(sweep)[0].get("attempts", 0)) >= 1 and
                 self.jobs(sweep)[0].get("state") == "JOB_STATE_PENDING",
                 240, "the drained job to be pending again")
        drained = self.jobs(sweep)[0]
        self.assertGreater(int(drained.get("step", 0)), 0)
        self.slurm_up("30", 60, "slurm")
        done = wait_for(lambda: (lambda j: j if j.get("state") == "JOB_STATE_SUCCEEDED"
                                 else None)(self.jobs(sweep)[0]), 900, "the job to finish")
        self.assertGreaterEqual(int(done["attempts"]), 2)
        self.assertEqual(int(done["step"]), 12000)


if __name__ == "__main__":
    unittest.main()
