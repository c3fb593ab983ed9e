"""The CPU images, started with podman: the coordinator and a CPU worker as two containers.

The coordinator container (its image's own entrypoint and command, a token file mounted at
/etc/ablate/tokens) must answer /healthz; the worker container must join it (its /readyz
answers 200 only once the coordinator welcomed it) and run a two-job sweep, submitted with the
`ablate` CLI inside the coordinator's image, to success, checkpointing on a volume mounted at
/shared; then `podman stop` (SIGTERM) must stop both with exit status 0. The containers share
a podman network and find each other by name; only the HTTP ports are published, on 127.0.0.1.

Needs podman and the images that `bash scripts/images.sh base build` makes (tag: the project's
version, or ABLATE_IMAGE_TAG); skipped without them. In the long set. Usage:
  images_test.py
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from wait import wait_for  # noqa: E402  (tests/support/wait.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USER_TOKEN = "images-test-user-token-0123456789"
WORKER_ID = "images-worker-0"


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"project\(ablate VERSION ([0-9.]+)", f.read()).group(1)


TAG = os.environ.get("ABLATE_IMAGE_TAG") or project_version()
COORDINATOR_IMAGE = f"localhost/ablate-coordinator:{TAG}"
WORKER_IMAGE = f"localhost/ablate-worker-cpu:{TAG}"
# As in scripts/images.sh: limits any hard limit allows (podman's defaults need
# CAP_SYS_RESOURCE), and runc, which also runs on hosts with hybrid cgroups (crun does not).
RUN_FLAGS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
if shutil.which("runc"):
    RUN_FLAGS += ["--runtime", "runc"]


def podman(*args, check=True):
    result = subprocess.run(["podman", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.stdout}{result.stderr}")
    return result.stdout.strip()


def container_log(name):
    """What the container wrote: `podman logs` replays its stderr, where Ablate logs, on stderr."""
    result = subprocess.run(["podman", "logs", name], capture_output=True, text=True)
    return result.stdout + result.stderr


def missing_prerequisite():
    if not shutil.which("podman"):
        return "podman is not installed (Debian's podman; scripts/images.sh builds the images)"
    for image in (COORDINATOR_IMAGE, WORKER_IMAGE):
        if subprocess.run(["podman", "image", "exists", image]).returncode != 0:
            return f"{image} is not built (bash scripts/images.sh base build)"
    return None


def http_get(url, token=None):
    """(status, body) of a GET, or (None, reason) when nothing answers."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return None, str(e)


MISSING = missing_prerequisite()


@unittest.skipIf(MISSING, MISSING)
class ImagesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ablate-images-")
        suffix = str(os.getpid())
        cls.network = f"ablate-images-{suffix}"
        cls.coordinator = f"ablate-coordinator-{suffix}"
        cls.worker = f"ablate-worker-{suffix}"
        d = cls.dir
        worker_token = os.urandom(16).hex()
        cls.write("tokens", f"user {USER_TOKEN}\nworker {worker_token} {WORKER_ID}\n")
        cls.write("worker-token", worker_token)
        cls.write("sweep.yaml", "name: images\ngrid:\n  model: [tiny]\n  seed: [1, 2]\n"
                  "fixed:\n  steps: 40\n  batch_size: 4\n  context_length: 32\n"
                  "  warmup_steps: 2\n  learning_rate: 5e-3\n  log_every: 10\n"
                  "  eval_batches: 2\n  checkpoint_every: 20\n  cpu_threads: 1\n"
                  "checkpoint_root: /shared/checkpoints\n")
        # The images run as user 10001; the volume must be theirs (inside podman's user
        # namespace when podman runs rootless).
        os.makedirs(f"{d}/shared")
        owner = [] if os.geteuid() == 0 else ["podman", "unshare"]
        subprocess.run([*owner, "chown", "10001:10001", f"{d}/shared"], check=True)

        podman("network", "create", cls.network)
        podman("run", "-d", "--name", cls.coordinator, "--network", cls.network, *RUN_FLAGS,
               "-p", "127.0.0.1::8080",
               "-v", f"{d}/tokens:/etc/ablate/tokens:ro",
               "-v", f"{d}/sweep.yaml:/etc/ablate/sweep.yaml:ro", COORDINATOR_IMAGE)
        cls.coordinator_http = "http://" + podman("port", cls.coordinator, "8080/tcp")
        podman("run", "-d", "--name", cls.worker, "--network", cls.network, *RUN_FLAGS,
               "-p", "127.0.0.1::8081",
               "-e", f"ABLATE_COORDINATOR={cls.coordinator}:50051",
               "-e", f"ABLATE_WORKER_ID={WORKER_ID}",
               "-e", "ABLATE_TOKEN_FILE=/etc/ablate/worker-token",
               "-e", "ABLATE_HEALTH_HTTP=0.0.0.0:8081",
               "-v", f"{d}/worker-token:/etc/ablate/worker-token:ro",
               "-v", f"{d}/shared:/shared", WORKER_IMAGE,
               "--slots", "2", "--cpu-threads-per-slot", "1")
        cls.worker_http = "http://" + podman("port", cls.worker, "8081/tcp")

    @classmethod
    def write(cls, name, text):
        path = os.path.join(cls.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)  # read by user 10001 in the containers

    @classmethod
    def tearDownClass(cls):
        for name in (cls.worker, cls.coordinator):
            podman("rm", "-f", "-t", "0", name, check=False)
        podman("network", "rm", "-f", cls.network, check=False)
        owner = [] if os.geteuid() == 0 else ["podman", "unshare"]
        subprocess.run([*owner, "rm", "-rf", cls.dir])

    def logs(self):
        return "".join(f"\n--- {name} ---\n" + container_log(name)
                       for name in (self.coordinator, self.worker))

    def ablate(self, *args):
        result = subprocess.run(
            ["podman", "exec", "-e", f"ABLATE_TOKEN={USER_TOKEN}", self.coordinator, "ablate",
             "--coordinator", "127.0.0.1:50051", *args], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr + self.logs())
        return result.stdout

    def test_a_coordinator_is_healthy_and_the_worker_joins(self):
        wait_for(lambda: http_get(self.coordinator_http + "/healthz")[0] == 200, 60,
                 "the coordinator's /healthz")
        wait_for(lambda: http_get(self.worker_http + "/readyz")[0] == 200, 60,
                 "the worker's /readyz")
        status, body = http_get(self.coordinator_http + "/api/v1/workers", USER_TOKEN)
        self.assertEqual(status, 200, body)
        workers = json.loads(body)["workers"]
        self.assertEqual([(w["info"]["workerId"], w.get("connected")) for w in workers],
                         [(WORKER_ID, True)], body)

    def test_b_a_sweep_runs_in_the_worker_container(self):
        out = self.ablate("submit", "/etc/ablate/sweep.yaml")
        sweep = re.search(r"submitted sweep (\S+):", out).group(1)

        def ended():
            jobs = json.loads(self.ablate("status", sweep, "--json").splitlines()[0])["jobs"]
            states = {j.get("state") for j in jobs}
            return jobs if states <= {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED",
                                      "JOB_STATE_CANCELLED"} else None

        jobs = wait_for(ended, 600, "the sweep's two jobs to end")
        self.assertEqual([j.get("state") for j in jobs], ["JOB_STATE_SUCCEEDED"] * 2,
                         json.dumps(jobs) + self.logs())
        self.assertEqual({j.get("workerId") for j in jobs}, {WORKER_ID})
        self.assertEqual([int(j.get("step", 0)) for j in jobs], [40, 40])
        # The trainer in the worker's container wrote its checkpoints to the mounted volume.
        written = [f for _, _, files in os.walk(f"{self.dir}/shared/checkpoints") for f in files]
        self.assertTrue(written, "no checkpoint under the volume mounted at /shared")

    def test_c_sigterm_stops_both_cleanly(self):
        for name in (self.worker, self.coordinator):
            podman("stop", "-t", "60", name)
            self.assertEqual(podman("inspect", "--format", "{{.State.ExitCode}}", name), "0",
                             self.logs())
        self.assertIn("stopping signal=Terminated", container_log(self.coordinator))


if __name__ == "__main__":
    unittest.main()
