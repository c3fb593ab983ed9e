"""ablate.Client against a real coordinator on loopback: DataFrames of sweeps and jobs, sweep
files and dicts submitted, cancellation, each refusal raised as its own exception with the
coordinator's message, and a watch reconnecting to a coordinator killed and restarted. Other
jobs that train are in sweep_results_test.py."""

import contextlib
import os
import pathlib
import signal
import socket
import threading
import time
import unittest
import warnings

import grpc
import numpy as np
import pandas as pd

import ablate
import ablate.export
from ablate.v1 import sweep_service_pb2 as service_pb2
from cluster import Cluster, USER_TOKEN, VIEWER_TOKEN, bin_dir, tiny_sweep

# The most a test that trains may take before its watch is cut off (by closing its client).
WATCH_LIMIT_S = 120.0


@contextlib.contextmanager
def environment(**values):
    """os.environ with `values` set and ABLATE_TOKEN* otherwise unset, restored afterwards."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("ABLATE_TOKEN")}
    for name in saved:
        del os.environ[name]
    os.environ.update(values)
    try:
        yield
    finally:
        for name in values:
            os.environ.pop(name, None)
        os.environ.update(saved)


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
        # A name one sweep has stands for its id, as in the CLI. The scheduler may note why a
        # job waits (message, updated_at) between the two reads: those columns are left out.
        volatile = ["message", "updated_at"]
        pd.testing.assert_frame_equal(self.client.jobs("from-dict").drop(columns=volatile),
                                      jobs.drop(columns=volatile))
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

    def test_an_edited_sweep_is_refused_until_updated_or_added_beside(self):
        sweep = tiny_sweep("edited", self.cluster.checkpoint_root)
        first = self.client.submit(sweep)
        sweep["grid"]["learning_rate"] = [1e-3, 2e-3]
        with self.assertRaises(ablate.AlreadyExists) as refused:
            self.client.submit(sweep)
        self.assertIn(f"sweep {first.sweep_id} is named 'edited' too", refused.exception.message)
        updated = self.client.submit(sweep, update=True)
        self.assertEqual(updated.sweep_id, first.sweep_id)
        self.assertTrue(updated.updated)
        self.assertEqual((updated.reused_jobs, updated.added_jobs, updated.dropped_jobs),
                         (1, 1, 1))
        sweep["grid"]["learning_rate"] = [3e-3]
        beside = self.client.submit(sweep, new_sweep=True)
        self.assertNotEqual(beside.sweep_id, first.sweep_id)
        self.assertFalse(beside.updated)
        self.assertEqual(beside.jobs, 1)
        self.client.cancel(first.sweep_id)
        self.client.cancel(beside.sweep_id)

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

    def test_submit_warns_of_a_checkpoint_root_no_connected_worker_holds(self):
        with Cluster(workers=1) as cluster, \
                ablate.Client(cluster.address, token=USER_TOKEN) as client:
            deadline = time.monotonic() + 30
            while not any(w.connected for w in client._call(
                    "ListWorkers", service_pb2.ListWorkersRequest()).workers):
                self.assertLess(time.monotonic(), deadline, "the worker never connected")
                time.sleep(0.1)
            with warnings.catch_warnings(record=True) as warned:
                warnings.simplefilter("always")
                outside = client.submit(tiny_sweep("outside", cluster.dir / "elsewhere"))
                inside = client.submit(tiny_sweep("inside", cluster.checkpoint_root))
        self.assertEqual(len(outside.warnings), 1, outside.warnings)
        self.assertIn(f"checkpoint_dir {cluster.dir}/elsewhere/", outside.warnings[0])
        self.assertIn("is outside every connected worker's --checkpoint-root (py-1: "
                      f"{cluster.checkpoint_root}", outside.warnings[0])
        self.assertEqual(inside.warnings, [])
        self.assertEqual([str(w.message) for w in warned], outside.warnings)

    def test_a_viewer_reads_but_may_not_submit(self):
        with ablate.Client(self.cluster.address, token=VIEWER_TOKEN) as viewer:
            self.assertIsInstance(viewer.sweeps(), pd.DataFrame)
            with self.assertRaises(ablate.PermissionDenied) as refused:
                viewer.submit(tiny_sweep("viewer", self.cluster.checkpoint_root))
        self.assertIn("user", refused.exception.message)

    def test_token_from_a_file_or_the_environment(self):
        token_file = self.cluster.dir / "my-token"
        token_file.write_text(f"  {VIEWER_TOKEN}  \n# the viewer's token\n")
        with ablate.Client(self.cluster.address, token_file=token_file) as client:
            self.assertIsInstance(client.sweeps(), pd.DataFrame)
        # As the CLI: $ABLATE_TOKEN_FILE first, then $ABLATE_TOKEN, each stripped.
        for name, value in (("ABLATE_TOKEN_FILE", str(token_file)),
                            ("ABLATE_TOKEN", f"{VIEWER_TOKEN}\n")):
            with self.subTest(name), environment(**{name: value}):
                with ablate.Client(self.cluster.address) as client:
                    self.assertIsInstance(client.sweeps(), pd.DataFrame)
        with environment(ABLATE_TOKEN_FILE=str(token_file), ABLATE_TOKEN="not-a-token-0123"):
            with ablate.Client(self.cluster.address) as client:
                self.assertIsInstance(client.sweeps(), pd.DataFrame)
        with ablate.Client(self.cluster.address, token="not-a-token-0123456789") as client:
            with self.assertRaises(ablate.Unauthenticated):
                client.sweeps()

    def test_a_token_that_cannot_be_sent_is_refused_by_name(self):
        # gRPC itself would refuse the call as INTERNAL "Invalid metadata", token unnamed.
        with self.assertRaises(ablate.Unauthenticated) as refused:
            ablate.Client(self.cluster.address, token=f"{USER_TOKEN}\nsecond-line")
        self.assertIn("'\\n' at character 27", refused.exception.message)
        self.assertNotIn(USER_TOKEN, refused.exception.message)
        self.assertEqual(refused.exception.code, grpc.StatusCode.UNAUTHENTICATED)
        with environment(ABLATE_TOKEN=f"t\u00f6ken-{USER_TOKEN}"):
            with self.assertRaisesRegex(ablate.Unauthenticated, r"^\$ABLATE_TOKEN holds"):
                ablate.Client(self.cluster.address)
        lines = self.cluster.dir / "coordinator-lines"
        lines.write_text(f"user {USER_TOKEN}\n")
        with self.assertRaisesRegex(ablate.Unauthenticated, "several words"):
            ablate.Client(self.cluster.address, token_file=lines)
        lines.write_text("\n")
        with environment(ABLATE_TOKEN_FILE=str(lines)):
            with self.assertRaisesRegex(ablate.Unauthenticated, "no token on its first line"):
                ablate.Client(self.cluster.address)

    def test_no_coordinator_is_unavailable(self):
        with socket.socket() as s:  # a port nobody listens on once this closes
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with ablate.Client(f"127.0.0.1:{port}", token=USER_TOKEN, timeout=5) as client:
            with self.assertRaises(ablate.Unavailable) as refused:
                client.sweeps()
            self.assertIn(f"ListSweeps: cannot reach the coordinator at 127.0.0.1:{port}",
                          refused.exception.message)
            # A watch that never began has nothing to go on with: it raises at once, as
            # `ablate watch` does, instead of reconnecting.
            started = time.monotonic()
            with warnings.catch_warnings(record=True) as warned:
                warnings.simplefilter("always")
                with self.assertRaises(ablate.Unavailable) as refused:
                    next(client.watch("any-sweep"))
            self.assertEqual(warned, [])
            self.assertIn("WatchSweep: cannot reach", refused.exception.message)
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

    def test_a_stopped_coordinator_times_out_naming_the_call_and_address(self):
        with Cluster() as cluster, \
                ablate.Client(cluster.address, token=USER_TOKEN, timeout=1) as client:
            # Stopped, its kernel still accepts the connection, but nothing answers.
            os.kill(cluster.coordinator.pid, signal.SIGSTOP)
            try:
                with self.assertRaises(ablate.DeadlineExceeded) as late:
                    client.jobs("any-sweep")
            finally:
                os.kill(cluster.coordinator.pid, signal.SIGCONT)
        self.assertIn(f"GetSweep: no answer from the coordinator at {cluster.address} within "
                      "1s", late.exception.message)

    def test_an_empty_sweep_list_has_the_dtypes_of_a_full_one(self):
        with Cluster() as cluster, ablate.Client(cluster.address, token=USER_TOKEN) as client:
            empty = client.sweeps()
            client.submit(tiny_sweep("one", cluster.checkpoint_root))
            full = client.sweeps()
        self.assertEqual(len(empty), 0)
        self.assertEqual(len(full), 1)
        pd.testing.assert_series_equal(empty.dtypes, full.dtypes)
        self.assertEqual(list(full["state"].cat.categories),
                         ["active", "completed", "failed", "cancelled"])

    def test_columns_follow_the_spec_with_their_dtypes(self):
        sweep = tiny_sweep("dtypes", self.cluster.checkpoint_root)
        sweep["grid"]["optimizer_args.beta2"] = [0.9, 0.95]
        sweep["grid"]["context_length"] = [32]
        sweep["fixed"].pop("context_length")
        sweep_id = self.client.submit(sweep).sweep_id
        jobs = self.client.jobs(sweep_id)
        self.assertEqual(ablate.export.grid_columns(jobs),
                         ["model", "learning_rate", "optimizer_args.beta2", "context_length"])
        self.assertEqual(jobs["optimizer_args.beta2"].dtype, "float64")
        self.assertEqual(jobs["optimizer_args.beta2"].tolist(), [0.9, 0.95, 0.9, 0.95])
        self.assertEqual(jobs["context_length"].dtype, "Int64")
        self.assertEqual(list(jobs["state"].cat.categories), [
            "pending", "assigned", "running", "succeeded", "failed", "cancelled"])
        self.assertTrue(jobs["state"].cat.ordered)
        self.assertEqual(jobs["uncounted_attempts"].dtype, "int64")
        self.assertEqual(jobs["uncounted_attempts"].tolist(), [0, 0, 0, 0])
        # Before any job evaluated, a table of eval/loss is there, empty.
        results = self.client.results(sweep_id)
        self.assertTrue(results["eval/loss"].isna().all())
        table = results.pivot_table(index="model", columns="learning_rate",
                                    values="eval/loss", dropna=False)
        self.assertEqual(table.shape, (1, 2))

    def test_a_tuned_sweep_with_repeats_puts_seed_after_the_grid(self):
        sweep = tiny_sweep("tuned-repeats", self.cluster.checkpoint_root)
        del sweep["grid"]["learning_rate"]
        for name in ("seed", "data_seed"):
            del sweep["fixed"][name]
        sweep.update(repeats=2, tuning={"parameters": {"learning_rate": [1e-3, 3e-3]},
                                        "min_steps": 2})
        sweep_id = self.client.submit(sweep).sweep_id
        for frame in (self.client.jobs(sweep_id), self.client.results(sweep_id)):
            # Only the trials so far, of the first seed, none of them a repeat.
            self.assertEqual(ablate.export.grid_columns(frame), ["model", "seed"])
            self.assertEqual(frame["seed"].dtype, "Int64")
            self.assertEqual(frame["seed"].isna().tolist(), [True, True])
            self.assertEqual(frame["role"].tolist(), ["trial", "trial"])

    def test_submit_takes_numpy_arrays_ranges_and_tuples(self):
        sweep = tiny_sweep("numpy", self.cluster.checkpoint_root)
        sweep["grid"] = {"model": ("tiny",), "learning_rate": np.logspace(-4, -2, 3),
                         "seed": range(1, 3)}
        del sweep["fixed"]["seed"]
        sweep["fixed"]["steps"] = np.int64(6)
        submitted = self.client.submit(sweep)
        self.assertEqual(submitted.jobs, 6)
        jobs = self.client.jobs(submitted.sweep_id)
        self.assertEqual(sorted(set(jobs["learning_rate"])), [1e-4, 1e-3, 1e-2])
        self.assertEqual(jobs["seed"].tolist(), [1, 2] * 3)
        sweep["grid"]["learning_rate"] = [1e-3, object()]
        with self.assertRaisesRegex(ValueError, r"^grid\.learning_rate\[1\]: .* object"):
            self.client.submit(sweep)

    def test_a_job_id_given_for_a_sweep_says_so(self):
        sweep = self.client.submit(tiny_sweep("job-for-sweep", self.cluster.checkpoint_root))
        job_id = self.client.jobs(sweep.sweep_id)["job_id"].iloc[0]
        for read in (self.client.jobs, self.client.results, self.client.sweep_id,
                     lambda id: next(self.client.watch(id))):
            with self.assertRaises(ablate.NotFound) as refused:
                read(job_id)
            self.assertIn(f"{job_id!r} is a job's id, not a sweep's: its sweep is "
                          f"{sweep.sweep_id!r}", refused.exception.message)
            self.assertIn(f"client.jobs({sweep.sweep_id!r})", refused.exception.message)

    def test_a_delta_keeps_the_sweep_name_description_and_priority(self):
        sweep = tiny_sweep("delta-row", self.cluster.checkpoint_root)
        sweep.update(description="rows in full", priority=3)
        sweep_id = self.client.submit(sweep).sweep_id
        watch = self.client.watch(sweep_id)
        first = next(watch)
        self.client.cancel(sweep_id)  # no worker: cancelling is what changes
        deltas = []
        for change in watch:
            deltas.append(change)
        self.assertFalse(first.delta)
        # The cancellation comes as a delta; a write recorded before the watch began and
        # committed after it (the scheduler's "waiting: ..." message), which has no delta,
        # brings the whole sweep again, which must keep the fields as well.
        self.assertTrue(any(c.delta for c in deltas), deltas)
        row = self.client.sweeps().set_index("sweep_id").loc[sweep_id]
        for change in [first] + deltas:
            self.assertEqual(change.sweep["name"], "delta-row")
            self.assertEqual(change.sweep["description"], "rows in full")
            self.assertEqual(change.sweep["priority"], 3)
            self.assertEqual(change.sweep["created_at"], row["created_at"])
        self.assertEqual(deltas[-1].sweep["state"], "cancelled")
        self.assertEqual(set(deltas[-1].jobs["state"]), {"cancelled"})

    def test_retry_requeues_ended_jobs(self):
        sweep_id = self.client.submit(tiny_sweep("retry", self.cluster.checkpoint_root)).sweep_id
        first, second = self.client.jobs(sweep_id)["job_id"]
        self.client.cancel(second)
        refused = self.client.retry(sweep_id, [first, second])
        self.assertEqual(refused.requeued, [second])
        self.assertEqual(list(refused.refused), [first])
        self.assertIn("PENDING", refused.refused[first])
        self.client.cancel(sweep_id)
        retried = self.client.retry("retry", cancelled=True)
        self.assertEqual(retried.sweep_id, sweep_id)
        self.assertEqual(retried.requeued, [first, second])
        self.assertEqual(self.client.jobs(sweep_id)["state"].tolist(), ["pending", "pending"])
        self.assertEqual(self.client.retry(sweep_id, failed=True).requeued, [])
        for wrong in ({}, {"job_ids": [first], "failed": True}):
            with self.assertRaises(ValueError):
                self.client.retry(sweep_id, **wrong)
        with ablate.Client(self.cluster.address, token=VIEWER_TOKEN) as viewer:
            with self.assertRaises(ablate.PermissionDenied):
                viewer.retry(sweep_id, cancelled=True)

    def test_a_job_log_before_any_worker_sent_one(self):
        sweep_id = self.client.submit(tiny_sweep("no-log", self.cluster.checkpoint_root)).sweep_id
        job_id = self.client.jobs(sweep_id)["job_id"].iloc[0]
        log = self.client.job_log(job_id)
        self.assertEqual((log.job_id, log.attempt_id, log.lines), (job_id, 0, []))
        self.assertIs(log.updated_at, pd.NaT)
        with self.assertRaises(ablate.NotFound):
            self.client.job_log(job_id, attempt_id=12345)
        with self.assertRaises(ablate.NotFound):
            self.client.job_log(f"{sweep_id}-nope")


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
