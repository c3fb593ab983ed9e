"""The deployment files, checked with the tools a cluster's operators use.

hadolint lints every image in deploy/docker; `kubectl kustomize` renders every overlay of
deploy/k8s, and kubernetes-validate checks what it renders against the newest Kubernetes it
ships and the release two minors older (strict: unknown fields fail). Beyond the schemas, the
rendered objects must keep what docs/deploy.md promises: one coordinator, restricted pods, the
worker's grace period and probes.
"""
import glob
import os
import re
import subprocess
import sys
import unittest

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
OVERLAYS = sorted(glob.glob(os.path.join(ROOT, "deploy", "k8s", "overlays", "*")))
# kinds from add-ons whose schemas Kubernetes does not ship: checked here by hand instead.
ADDON_KINDS = {"ScaledObject"}


def tool(name):
    return os.path.join(BIN, name)


def render(overlay):
    out = subprocess.run([tool("kubectl"), "kustomize", overlay], check=True,
                         capture_output=True, text=True).stdout
    return out, [d for d in yaml.safe_load_all(out) if d]


def kubernetes_versions():
    """The newest version kubernetes-validate ships and the one two minors older."""
    import kubernetes_validate.utils as utils
    newest = utils.latest_version()
    major, minor = (int(x) for x in newest.split(".")[:2])
    return [newest, f"{major}.{minor - 2}.0"]


class DockerfileTest(unittest.TestCase):
    def test_hadolint_passes_every_image(self):
        files = sorted(glob.glob(os.path.join(ROOT, "deploy", "docker", "Dockerfile.*")))
        self.assertEqual([os.path.basename(f) for f in files],
                         ["Dockerfile.coordinator", "Dockerfile.worker-cpu",
                          "Dockerfile.worker-gpu"])
        config = os.path.join(ROOT, "deploy", "docker", "hadolint.yaml")
        result = subprocess.run([tool("hadolint"), "--config", config, *files],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_bases_are_pinned_by_digest_and_users_are_not_root(self):
        for path in glob.glob(os.path.join(ROOT, "deploy", "docker", "Dockerfile.*")):
            text = open(path).read()
            for arg in re.findall(r"^ARG \w+_IMAGE=(\S+)", text, re.M):
                self.assertRegex(arg, r"@sha256:[0-9a-f]{64}$", path)
            self.assertRegex(text, r"\nUSER 10001\n", path)
            self.assertIn("org.opencontainers.image.version", text, path)


class KubernetesTest(unittest.TestCase):
    def test_there_are_the_two_overlays(self):
        self.assertEqual([os.path.basename(o) for o in OVERLAYS], ["cpu-demo", "gpu"])

    def test_every_overlay_renders_and_validates(self):
        for overlay in OVERLAYS:
            text, _ = render(overlay)
            path = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                f"ablate-{os.path.basename(overlay)}-{os.getpid()}.yaml")
            with open(path, "w") as f:
                f.write(text)
            for version in kubernetes_versions():
                with self.subTest(overlay=os.path.basename(overlay), version=version):
                    result = subprocess.run(
                        [tool("kubernetes-validate"), "--strict", "-k", version, path],
                        capture_output=True, text=True)
                    output = result.stdout + result.stderr
                    self.assertEqual(result.returncode, 0, output)
                    for line in output.splitlines():
                        if line.startswith("WARN"):
                            kind = re.search(r"schema for kind (\w+)", line)
                            self.assertTrue(kind and kind.group(1) in ADDON_KINDS, line)
            os.remove(path)

    def test_promises_of_the_manifests(self):
        for overlay in OVERLAYS:
            _, docs = render(overlay)
            by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
            coordinator = by_name[("StatefulSet", "ablate-coordinator")]
            worker = by_name[("StatefulSet", "ablate-worker")]
            with self.subTest(overlay=os.path.basename(overlay)):
                # One SQLite writer.
                self.assertEqual(coordinator["spec"]["replicas"], 1)
                for workload in (coordinator, worker):
                    pod = workload["spec"]["template"]["spec"]
                    self.assertTrue(pod["securityContext"]["runAsNonRoot"])
                    self.assertEqual(pod["securityContext"]["seccompProfile"]["type"],
                                     "RuntimeDefault")
                    for container in pod["containers"]:
                        security = container["securityContext"]
                        self.assertFalse(security["allowPrivilegeEscalation"])
                        self.assertEqual(security["capabilities"]["drop"], ["ALL"])
                        self.assertIn("limits", container["resources"])
                        self.assertIn("livenessProbe", container)
                        self.assertIn("readinessProbe", container)
                worker_pod = worker["spec"]["template"]["spec"]
                self.assertGreaterEqual(worker_pod["terminationGracePeriodSeconds"], 60)
                self.assertIn(("PodDisruptionBudget", "ablate-worker"), by_name)
        _, gpu = render(os.path.join(ROOT, "deploy", "k8s", "overlays", "gpu"))
        kinds = {(d["kind"], d["metadata"]["name"]): d for d in gpu}
        scaled = kinds[("ScaledObject", "ablate-worker")]
        self.assertEqual(scaled["spec"]["scaleTargetRef"]["name"], "ablate-worker")
        # The pool follows the unfinished jobs, the running ones included: sized by the pending
        # ones alone it would stop busy workers as soon as they took the queue.
        query = scaled["spec"]["triggers"][0]["metadata"]["query"]
        matcher = re.fullmatch(r'sum\(ablate_jobs\{state=~"([a-z_|]+)"\}\)', query)
        self.assertIsNotNone(matcher, query)
        counted = [state for state in ("pending", "assigned", "running", "succeeded", "failed",
                                       "cancelled", "dropped_live", "dropped_ended")
                   if re.fullmatch(matcher.group(1), state)]
        self.assertEqual(counted, ["pending", "assigned", "running", "dropped_live"])
        worker = kinds[("StatefulSet", "ablate-worker")]["spec"]["template"]["spec"]
        limits = worker["containers"][0]["resources"]["limits"]
        self.assertIn("nvidia.com/gpu", limits)
        self.assertTrue(any(t["key"] == "nvidia.com/gpu" for t in worker["tolerations"]))


if __name__ == "__main__":
    unittest.main()
