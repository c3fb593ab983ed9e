"""ablate.Client against a real coordinator on loopback: DataFrames of sweeps and jobs, sweep
files and dicts submitted, cancellation, each refusal raised as its own exception with the
coordinator's message, and a watch reconnecting to a coordinator killed and restarted. Other
jobs that train are in sweep_results_test.py."""

import os
import pathlib
import socket
import threading
import time
import unittest
import warnings

import grpc
import pandas as pd

import ablate
from cluster import Cluster, USER_TOKEN, VIEWER_TOKEN, bin_dir, tiny_sweep

# The most a test that trains may take before its watch is cut off (by closing its client).
WATCH_LIMIT_S = 120.0


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster()
        cls.client = ablate.Client(cls.cluster.address, token=USER_TOKEN)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.cluster.close()

    def test_submit_a_dict_then_read_its_jobs(self):
        submitted = self.client.submit(tiny_sweep("from-dict", self.cluster.checkpoint_root))
        self.assertTrue(submitted.sweep_id.startswith("from-dict-"))
        self.assertEqual(submitted.jobs, 2)
        self.assertFalse(submitted.already_existed)
        again = self.client.submit(tiny_sweep("from-dict", self.cluster.checkpoint_root))
        self.assertEqual(again.sweep_id, submitted.sweep_id)
        self.assertTrue(again.already_existed)

        jobs = self.client.jobs(submitted.sweep_id)
        # A name one sweep has stands for its id, as in the CLI.
        pd.testing.assert_frame_equal(self.client.jobs("from-dict"), jobs)
        self.assertEqual(list(jobs.columns[:4]), ["job_id", "index", "model", "learning_rate"])
        self.assertEqual(jobs["index"].tolist(), [0, 1])
        self.assertEqual(jobs["model"].tolist(), ["tiny", "tiny"])
        # Resolved from each job's TrainConfig, so numbers are numbers.
        self.assertEqual(jobs["learning_rate"].tolist(), [1e-3, 5e-3])
        self.assertEqual(jobs["state"].tolist(), ["pending", "pending"])
        self.assertTrue((jobs["created_at"].dt.tz is not None))

        sweeps = self.client.sweeps()
        row = sweeps.set_index("sweep_id").loc[submitted.sweep_id]
        self.assertEqual(row["name"], "from-dict")
        self.assertEqual(row["state"], "active")
        self.assertEqual(row["total"], 2)
        self.assertEqual(row["pending"], 2)

    def test_submit_a_sweep_file_then_cancel_it(self):
        path = self.cluster.dir / "cancel-me.yaml"
        path.write_text("name: cancel-me\ngrid:\n  seed: [1, 2, 3]\n"
                        "fixed:\n  model: tiny\n  steps: 20\n")
        submitted = self.client.submit(path)
        self.assertEqual(submitted.jobs, 3)
        jobs = self.client.jobs(submitted.sweep_id)
        self.assertEqual(jobs["seed"].tolist(), [1, 2, 3])

        cancelled = self.client.cancel(submitted.sweep_id)
        self.assertEqual(sorted(cancelled), sorted(jobs["job_id"]))
        self.assertEqual(set(self.client.jobs(submitted.sweep_id)["state"]), {"cancelled"})
        self.assertEqual(self.client.cancel(submitted.sweep_id), [])

    def test_a_bad_sweep_file_names_the_file_line_and_key(self):
        path = self.cluster.dir / "bad.yaml"
        path.write_text("name: bad\ngrid:\n  optimizer: [adamx]\n")
        with self.assertRaises(ablate.InvalidArgument) as refused:
            self.client.submit(path)
        self.assertIn(f"{path}:3", refused.exception.message)
        self.assertIn("adamx", refused.exception.message)
        self.assertEqual(refused.exception.code, grpc.StatusCode.INVALID_ARGUMENT)

    def test_a_bad_dict_names_each_key_without_a_place(self):
        # The dict goes as JSON text the caller never saw: a line and column of it would mean
        # nothing, so each problem (a line each) starts with its key.
        sweep = tiny_sweep("bad-dict", self.cluster.checkpoint_root)
        sweep["grid"]["optimizer"] = ["adamx"]
        sweep["fixed"]["learnig_rate"] = 1e-3
        with self.assertRaises(ablate.InvalidArgument) as refused:
            self.client.submit(sweep)
        lines = refused.exception.message.splitlines()
        self.assertEqual(len(lines), 2, refused.exception.message)
        self.assertTrue(lines[0].startswith("grid.optimizer: unknown optimizer 'adamx'"), lines)
        self.assertTrue(lines[1].startswith("fixed.learnig_rate: unknown setting"), lines)
        self.assertIn("learning_rate", lines[1])
        self.assertNotIn("<dict>", refused.exception.message)
        self.assertEqual(refused.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        # A problem placed at the text alone loses its "<dict>: " too.
        with self.assertRaises(ablate.InvalidArgument) as refused:
            self.client.submit({"grid": {"seed": [1]}})
        self.assertTrue(refused.exception.message.startswith("name: "), refused.exception.message)

    def test_unknown_sweep_is_not_found(self):
        with self.assertRaises(ablate.NotFound) as refused:
            self.client.jobs("no-such-sweep")
        self.assertIn("no-such-sweep", refused.exception.message)
        # Only a lost connection is retried: a watch's other errors raise at once.
        with self.assertRaises(ablate.NotFound) as refused:
            next(self.client.watch("no-such-sweep"))
        self.assertIn("no-such-sweep", refused.exception.message)

    def test_a_viewer_reads_but_may_not_submit(self):
        with ablate.Client(self.cluster.address, token=VIEWER_TOKEN) as viewer:
            self.assertIsInstance(viewer.sweeps(), pd.DataFrame)
            with self.assertRaises(ablate.PermissionDenied) as refused:
                viewer.submit(tiny_sweep("viewer", self.cluster.checkpoint_root))
        self.assertIn("user", refused.exception.message)

    def test_token_from_a_file_or_the_environment(self):
        token_file = self.cluster.dir / "my-token"
        token_file.write_text(f"  {VIEWER_TOKEN}  \n")
        with ablate.Client(self.cluster.address, token_file=token_file) as client:
            self.assertIsInstance(client.sweeps(), pd.DataFrame)
        os.environ["ABLATE_TOKEN"] = VIEWER_TOKEN
        try:
            with ablate.Client(self.cluster.address) as client:
                self.assertIsInstance(client.sweeps(), pd.DataFrame)
        finally:
            del os.environ["ABLATE_TOKEN"]
        with ablate.Client(self.cluster.address, token="not-a-token-0123456789") as client:
            with self.assertRaises(ablate.Unauthenticated):
                client.sweeps()

    def test_no_coordinator_is_unavailable(self):
        with socket.socket() as s:  # a port nobody listens on once this closes
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with ablate.Client(f"127.0.0.1:{port}", token=USER_TOKEN, timeout=5) as client:
            with self.assertRaises(ablate.Unavailable):
                client.sweeps()
            # A watch that never began has nothing to go on with: it raises at once, as
            # `ablate watch` does, instead of reconnecting.
            started = time.monotonic()
            with warnings.catch_warnings(record=True) as warned:
                warnings.simplefilter("always")
                with self.assertRaises(ablate.Unavailable):
                    next(client.watch("any-sweep"))
            self.assertEqual(warned, [])
            self.assertLess(time.monotonic() - started, 5)

    def test_a_watch_gives_up_reconnecting_after_reconnect_for(self):
        with Cluster() as cluster, ablate.Client(cluster.address, token=USER_TOKEN) as client:
            sweep = client.submit(tiny_sweep("gives-up", cluster.checkpoint_root)).sweep_id
            watch = client.watch(sweep, reconnect_for=1.5)
            self.assertFalse(next(watch).delta)  # no worker: the jobs stay pending
            cluster.kill_coordinator()
            started = time.monotonic()
            with warnings.catch_warnings(record=True) as warned:
                warnings.simplefilter("always")
                with self.assertRaises(ablate.Unavailable) as gave_up:
                    next(watch)
            elapsed = time.monotonic() - started
        self.assertGreaterEqual(elapsed, 1.5)
        self.assertLess(elapsed, 10)
        self.assertIn("for 1.5s", gave_up.exception.message)
        self.assertEqual(len(warned), 1, [str(w.message) for w in warned])  # once per loss
        self.assertIn("reconnecting for up to 1.5s", str(warned[0].message))
        with self.assertRaises(ValueError):
            client.watch(sweep, reconnect_for=-1)

    def test_an_empty_sweep_list_keeps_its_columns(self):
        with Cluster() as empty, ablate.Client(empty.address, token=USER_TOKEN) as client:
            sweeps = client.sweeps()
        self.assertEqual(len(sweeps), 0)
        self.assertIn("state", sweeps.columns)


@unittest.skipUnless((bin_dir() / "ablate-train").exists(), "ablate-train is not built")
class WatchReconnectTest(unittest.TestCase):
    def test_a_watch_goes_on_through_a_coordinator_killed_and_restarted(self):
        """The coordinator SIGKILLed while the first job runs and restarted 1 s later on the same
        port and database: the watch warns once, reconnects, starts again from the whole sweep
        and follows it to its end, as `ablate watch` does."""
        with Cluster(workers=1) as cluster, \
                ablate.Client(cluster.address, token=USER_TOKEN) as client:
            spec = tiny_sweep("reconnect", cluster.checkpoint_root)
            # Jobs of a second or two each: the second is still to run once the watch is back.
            spec["fixed"]["steps"] = 600
            sweep = client.submit(spec).sweep_id
            # Closing the client cancels the watch: a hung one fails the test instead.
            watchdog = threading.Timer(WATCH_LIMIT_S, client.close)
            watchdog.start()
            changes, killed_at, restarter = [], None, None
            try:
                with warnings.catch_warnings(record=True) as warned:
                    warnings.simplefilter("always")
                    for change in client.watch(sweep, reconnect_for=30):
                        changes.append(change)
                        if killed_at is None and "running" in set(change.jobs["state"]):
                            cluster.kill_coordinator()
                            killed_at = len(changes)
                            restarter = threading.Timer(1.0, cluster.restart_coordinator)
                            restarter.start()
            except (ablate.AblateError, ValueError) as error:  # ValueError: cut off
                self.fail(f"the watch failed: {error!r}\n{cluster.logs()}")
            finally:
                watchdog.cancel()
                if restarter is not None:
                    restarter.join()
            logs = cluster.logs()
        self.assertIsNotNone(killed_at, "no job was seen running")
        self.assertEqual(len(warned), 1, [str(w.message) for w in warned])  # once per loss
        self.assertIn(cluster.address, str(warned[0].message))
        self.assertIn("reconnecting for up to 30s", str(warned[0].message))
        self.assertEqual(warned[0].filename, __file__)  # the caller's loop, not the client
        first, after = changes[0], changes[killed_at:]
        self.assertFalse(first.delta)
        # Back, the watch starts again from the whole sweep (no resuming after a version).
        self.assertTrue(after, "nothing came after the restart")
        self.assertFalse(after[0].delta)
        self.assertEqual(len(after[0].jobs), 2)
        self.assertTrue(all(c.delta for c in after[1:]))
        # ... then follows the jobs' training, points included, as before the loss.
        self.assertGreater(sum(len(c.metrics) for c in after[1:]), 0, logs)
        last = changes[-1]
        self.assertEqual(last.sweep["state"], "completed", logs)
        self.assertEqual(last.sweep["succeeded"], 2)


if __name__ == "__main__":
    unittest.main()
