"""Real Ablate processes for the Python tests: `ablate-coordinator` on loopback ports the kernel
picks, its database and token file in a scratch folder, and `ablate-worker`s running the real
`ablate-train`. The binaries come from $ABLATE_BIN_DIR (ctest sets it to build/bin).

The tokens are those of tests/support/tokens.cc, so the C++ and Python tests read alike.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import tempfile
import time

USER_TOKEN = "test-user-token-0123456789"
VIEWER_TOKEN = "test-viewer-token-0123456789"
START_TIMEOUT_S = 30.0


def worker_token(worker_id: str) -> str:
    return f"test-worker-token-{worker_id}-0123456789"


def bin_dir() -> pathlib.Path:
    value = os.environ.get("ABLATE_BIN_DIR")
    if not value:
        raise RuntimeError("ABLATE_BIN_DIR must name the folder of Ablate's binaries")
    return pathlib.Path(value)


class Cluster:
    """A coordinator and `workers` workers of one CPU slot each, stopped by `stop` (SIGTERM,
    then SIGKILL after 15 s). Use as a context manager. `kill_coordinator` and
    `restart_coordinator` crash and restart the coordinator on the same port and database."""

    def __init__(self, workers: int = 0) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="ablate-py-")
        self.dir = pathlib.Path(self._scratch.name)
        self._processes: list[subprocess.Popen] = []
        worker_ids = [f"py-{i}" for i in range(1, workers + 1)]
        tokens = self.dir / "tokens"
        tokens.write_text(f"user {USER_TOKEN}\nviewer {VIEWER_TOKEN}\n" + "".join(
            f"worker {worker_token(w)} {w}\n" for w in worker_ids))
        self._coordinator_starts = 0
        self.grpc_port = self._start_coordinator(0)
        self.address = f"127.0.0.1:{self.grpc_port}"
        self.checkpoint_root = self.dir / "checkpoints"
        for w in worker_ids:
            self._start([bin_dir() / "ablate-worker", "--coordinator", self.address,
                         "--worker-id", w, "--work-dir", self.dir / w, "--slots", "1",
                         "--checkpoint-root", self.checkpoint_root], w,
                        {"ABLATE_TOKEN": worker_token(w)})

    def _start_coordinator(self, grpc_port: int) -> int:
        """Starts the coordinator on `grpc_port` (0: one the kernel picks) with the cluster's
        database and tokens; returns its gRPC port once it listens. Each start logs to its own
        file (coordinator.log, then coordinator-2.log, ...)."""
        self._coordinator_starts += 1
        ports = self.dir / "ports"
        ports.unlink(missing_ok=True)
        name = "coordinator" if self._coordinator_starts == 1 else \
            f"coordinator-{self._coordinator_starts}"
        self.coordinator = self._start([
            bin_dir() / "ablate-coordinator", "--listen", f"127.0.0.1:{grpc_port}",
            "--http", "127.0.0.1:0", "--db", self.dir / "a.db", "--ports-file", ports,
            "--token-file", self.dir / "tokens"], name)
        # Stopped last, as the first one would have been: the workers leave before it.
        self._processes.remove(self.coordinator)
        self._processes.insert(0, self.coordinator)
        return self._wait_for_port(ports, "grpc", self.coordinator)

    def kill_coordinator(self) -> None:
        """SIGKILL: the coordinator ends without closing anything, as in a crash."""
        self.coordinator.kill()
        self.coordinator.wait()
        self._processes.remove(self.coordinator)

    def restart_coordinator(self) -> None:
        """A new coordinator on the same address and database, after `kill_coordinator`."""
        self._start_coordinator(self.grpc_port)

    def _start(self, argv: list, name: str, env: dict | None = None) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "wb")
        process = subprocess.Popen([str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT,
                                   cwd=self.dir, env={**os.environ, **(env or {})})
        log.close()
        self._processes.append(process)
        return process

    def _wait_for_port(self, ports: pathlib.Path, name: str, process: subprocess.Popen) -> int:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if ports.exists():
                fields = dict(line.split("=") for line in ports.read_text().split())
                return int(fields[name])
            if process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the coordinator did not start:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.dir.glob("*.log")))

    def stop(self) -> None:
        for process in reversed(self._processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self._processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()

    def close(self) -> None:
        self.stop()
        self._scratch.cleanup()

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tiny_sweep(name: str, checkpoint_root: pathlib.Path) -> dict:
    """Two tiny-model jobs of a few steps on the built-in corpus: seconds of CPU each."""
    return {
        "name": name,
        "grid": {"model": ["tiny"], "learning_rate": [1e-3, 5e-3]},
        "fixed": {"steps": 6, "batch_size": 4, "context_length": 32, "warmup_steps": 1,
                  "log_every": 1, "eval_batches": 2, "seed": 1, "data_seed": 1},
        "checkpoint_root": str(checkpoint_root),
    }
