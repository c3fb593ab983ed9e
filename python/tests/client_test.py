"""ablate.Client against a real coordinator on loopback: DataFrames of sweeps and jobs, sweep
files and dicts submitted, cancellation, and each refusal raised as its own exception with the
coordinator's message. Jobs that train are in sweep_results_test.py."""

import os
import pathlib
import socket
import unittest

import grpc
import pandas as pd

import ablate
from cluster import Cluster, USER_TOKEN, VIEWER_TOKEN, tiny_sweep


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

    def test_unknown_sweep_is_not_found(self):
        with self.assertRaises(ablate.NotFound) as refused:
            self.client.jobs("no-such-sweep")
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

    def test_an_empty_sweep_list_keeps_its_columns(self):
        with Cluster() as empty, ablate.Client(empty.address, token=USER_TOKEN) as client:
            sweeps = client.sweeps()
        self.assertEqual(len(sweeps), 0)
        self.assertIn("state", sweeps.columns)


if __name__ == "__main__":
    unittest.main()
