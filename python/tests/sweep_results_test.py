"""A two-job sweep trained by the real ablate-train under a real worker, read back through
ablate.Client: watch until it ends, results with final metrics and provenance, long metrics
with wall times and downsampling; then every export format, each read back with its own
ecosystem's reader (pandas, pyarrow, TensorBoard's EventAccumulator, W&B's record protos), and
`ablate export` delegating to ablate-export."""

import math
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import pandas as pd
import pyarrow.parquet as pq

import ablate
import ablate.export
from cluster import Cluster, USER_TOKEN, bin_dir, tiny_sweep
from wandb_log import wandb_records


@unittest.skipUnless((bin_dir() / "ablate-train").exists(), "ablate-train is not built")
class SweepResultsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.started = time.time()
        cls.cluster = Cluster(workers=1)
        cls.client = ablate.Client(cls.cluster.address, token=USER_TOKEN)
        cls.sweep = cls.client.submit(tiny_sweep("py-results", cls.cluster.checkpoint_root))
        cls.changes = list(cls.client.watch(cls.sweep.sweep_id))
        cls.ended = time.time()
        cls.out = pathlib.Path(tempfile.mkdtemp(prefix="ablate-export-"))

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.cluster.close()
        shutil.rmtree(cls.out)

    def test_watch_starts_whole_then_sends_changes_until_the_end(self):
        first, last = self.changes[0], self.changes[-1]
        self.assertFalse(first.delta)
        self.assertEqual(len(first.jobs), 2)
        self.assertTrue(all(c.delta for c in self.changes[1:]))
        self.assertEqual(last.sweep["state"], "completed", self.cluster.logs())
        # Each a whole row of sweeps(), the spec's name included, not only the first.
        self.assertEqual({c.sweep["name"] for c in self.changes}, {"py-results"})
        versions = [c.version for c in self.changes]
        self.assertEqual(versions, sorted(versions))
        streamed = pd.concat([c.metrics for c in self.changes])
        self.assertIn("train/loss", set(streamed["name"]))

    def test_results_have_grid_state_final_metrics_and_provenance(self):
        results = self.client.results(self.sweep.sweep_id)
        self.assertEqual(results["learning_rate"].tolist(), [1e-3, 5e-3])
        self.assertEqual(results["state"].tolist(), ["succeeded"] * 2)
        metrics = self.client.metrics(self.sweep.sweep_id)
        for _, row in results.iterrows():
            points = metrics[(metrics["job_id"] == row["job_id"])]
            for name in ("train/loss", "eval/loss"):
                series = points[points["name"] == name].sort_values("step")
                self.assertEqual(row[name], series["value"].iloc[-1], name)
            self.assertEqual(row["final_eval_loss"], row["eval/loss"])
            self.assertEqual(row["seed"], 1)
            self.assertTrue(row["code_version"])
            self.assertEqual(row["device"], "cpu")
            self.assertIn('"learning_rate":', row["config_json"])

    def test_metrics_are_long_with_wall_times_and_thin_on_request(self):
        metrics = self.client.metrics(self.sweep.sweep_id, names=["train/loss"])
        self.assertEqual(list(metrics.columns), ["job_id", "name", "step", "value", "wall_time"])
        self.assertEqual(set(metrics["name"]), {"train/loss"})
        for _, points in metrics.groupby("job_id"):
            self.assertEqual(points["step"].tolist(), [1, 2, 3, 4, 5, 6])
        self.assertTrue(metrics["wall_time"].between(self.started, self.ended).all())
        thinned = self.client.metrics(self.sweep.sweep_id, names=["train/loss"], max_points=2)
        for _, points in thinned.groupby("job_id"):
            self.assertEqual(points["step"].tolist(), [1, 6])
        with self.assertRaises(ValueError):
            self.client.metrics(self.sweep.sweep_id, max_points=0)
        # A mistyped series gives an empty frame, and a warning naming the series there are.
        with self.assertWarnsRegex(UserWarning, r"has a point of 'train/los'; the series its "
                                   r"jobs have: .*eval/loss, .*train/loss"):
            mistyped = self.client.metrics(self.sweep.sweep_id, names=["train/loss",
                                                                        "train/los"])
        self.assertEqual(set(mistyped["name"]), {"train/loss"})

    def export(self, fmt):
        out = self.out / fmt
        ablate.export.export(self.client, self.sweep.sweep_id, fmt, out)
        return out

    def test_csv_and_parquet_hold_the_client_frames(self):
        results = self.client.results(self.sweep.sweep_id)
        metrics = self.client.metrics(self.sweep.sweep_id)
        csv = self.export("csv")
        read = pd.read_csv(csv / "results.csv")
        self.assertEqual(read["job_id"].tolist(), results["job_id"].tolist())
        self.assertEqual(read["learning_rate"].tolist(), results["learning_rate"].tolist())
        self.assertEqual(read["eval/loss"].tolist(), results["eval/loss"].tolist())
        self.assertEqual(len(pd.read_csv(csv / "metrics.csv")), len(metrics))
        parquet = self.export("parquet")
        table = pq.read_table(parquet / "metrics.parquet").to_pandas()
        pd.testing.assert_frame_equal(table, metrics, check_dtype=False)
        self.assertEqual(pq.read_table(parquet / "results.parquet").num_rows, 2)

    def test_tensorboard_runs_read_by_tensorboard(self):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.plugins.hparams import plugin_data_pb2
        self.export("tensorboard")
        out = self.export("tensorboard")  # again: each run keeps one event file
        job_ids = self.client.jobs(self.sweep.sweep_id)["job_id"]
        for folder in [out] + [out / job_id for job_id in job_ids]:
            self.assertEqual(len(list(folder.glob("events.out.tfevents.*"))), 1, folder)
        metrics = self.client.metrics(self.sweep.sweep_id)
        results = self.client.results(self.sweep.sweep_id)
        for _, job in results.iterrows():
            accumulator = EventAccumulator(str(out / job["job_id"]))
            accumulator.Reload()
            expected = metrics[(metrics["job_id"] == job["job_id"])
                               & (metrics["name"] == "train/loss")]
            scalars = accumulator.Scalars("train/loss")
            self.assertEqual([s.step for s in scalars], expected["step"].tolist())
            for scalar, value, wall in zip(scalars, expected["value"], expected["wall_time"]):
                self.assertAlmostEqual(scalar.value, value, places=5)
                self.assertAlmostEqual(scalar.wall_time, wall, places=3)
            hparams = accumulator.PluginTagToContent("hparams")
            start = plugin_data_pb2.HParamsPluginData.FromString(
                hparams["_hparams_/session_start_info"]).session_start_info
            self.assertEqual(start.hparams["model"].string_value, "tiny")
            self.assertAlmostEqual(start.hparams["learning_rate"].number_value,
                                   job["learning_rate"])

    def test_wandb_offline_runs(self):
        os.environ["WANDB_SILENT"] = "true"
        out = self.export("wandb")
        results = self.client.results(self.sweep.sweep_id)
        for _, job in results.iterrows():
            (run_dir,) = (out / "wandb").glob(f"offline-run-*-{job['job_id']}")
            (log,) = run_dir.glob("*.wandb")
            records = list(wandb_records(log))
            (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
            self.assertEqual(run.run_group, self.sweep.sweep_id)
            self.assertEqual(run.display_name, job["job_id"])
            self.assertIn("model=tiny", run.tags)
            config = {i.key: i.value_json for i in run.config.update}
            self.assertEqual(float(config["learning_rate"]), job["learning_rate"])
            history = [{i.key or "/".join(i.nested_key): i.value_json for i in r.history.item}
                       for r in records if r.WhichOneof("record_type") == "history"]
            losses = [float(h["train/loss"]) for h in history if "train/loss" in h]
            self.assertEqual(len(losses), 6)
            self.assertAlmostEqual(losses[-1], job["train/loss"])
            # The trainer's wall times, not the export's.
            stamps = [float(h["_timestamp"]) for h in history]
            self.assertTrue(all(self.started <= t <= self.ended for t in stamps), stamps)

    def test_ablate_export_runs_the_python_exporter(self):
        out = self.out / "cli"
        exporter = shutil.which("ablate-export")
        self.assertIsNotNone(exporter, "ablate-export is not on PATH")
        # By the sweep's name, which stands for its id.
        done = subprocess.run(
            [str(bin_dir() / "ablate"), "--coordinator", self.cluster.address, "export",
             "py-results", "--format", "csv", "--out", str(out)],
            env={**os.environ, "ABLATE_TOKEN": USER_TOKEN}, capture_output=True, text=True,
            timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(len(pd.read_csv(out / "results.csv")), 2)
        refused = subprocess.run(
            [str(bin_dir() / "ablate"), "--coordinator", self.cluster.address, "export",
             "no-such-sweep", "--format", "csv", "--out", str(self.out / "refused")],
            env={**os.environ, "ABLATE_TOKEN": USER_TOKEN}, capture_output=True, text=True,
            timeout=120)
        self.assertEqual(refused.returncode, 1)
        self.assertIn("no-such-sweep", refused.stderr)
        self.assertFalse((self.out / "refused").exists(), "a refused export made its folder")

    def test_ablate_export_reads_the_token_file_the_cli_reads(self):
        token_file = self.out / "token"
        token_file.write_text(f"{USER_TOKEN}  \n")
        for env, code in (({"ABLATE_TOKEN_FILE": str(token_file)}, 0),
                          ({"ABLATE_TOKEN": f"{USER_TOKEN}\nnext"}, 2)):
            with self.subTest(env=list(env)):
                out = self.out / f"token-{code}"
                done = subprocess.run(
                    [shutil.which("ablate-export"), "py-results", "--format", "csv", "--out",
                     str(out), "--coordinator", self.cluster.address],
                    env={**{k: v for k, v in os.environ.items()
                            if not k.startswith("ABLATE_TOKEN")}, **env},
                    capture_output=True, text=True, timeout=120)
                self.assertEqual(done.returncode, code, done.stderr)
                self.assertEqual((out / "results.csv").exists(), code == 0)
        self.assertIn("$ABLATE_TOKEN holds '\\n' at character 27", done.stderr)

    def test_a_format_without_its_package_fails_before_asking_anything(self):
        # No coordinator at this address: an export that asked first would exit 3, unreachable.
        program = ("import sys; sys.modules['tensorboard'] = None; import ablate.export; "
                   "sys.exit(ablate.export.main(sys.argv[1:]))")
        out = self.out / "no-tensorboard"
        done = subprocess.run(
            [sys.executable, "-c", program, "py-results", "--format", "tensorboard", "--out",
             str(out), "--coordinator", "127.0.0.1:1"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("pip install 'ablate[tensorboard]'", done.stderr)
        self.assertFalse(out.exists())

    def test_a_job_log_holds_the_end_of_its_trainer_output(self):
        job_id = self.client.jobs(self.sweep.sweep_id)["job_id"].iloc[0]
        # An ended attempt's tail comes once, shortly after its end.
        deadline = time.monotonic() + 30
        log = self.client.job_log(job_id)
        while not log.lines and time.monotonic() < deadline:
            time.sleep(0.2)
            log = self.client.job_log(job_id)
        self.assertEqual(log.job_id, job_id)
        self.assertGreater(log.attempt_id, 0, self.cluster.logs())
        self.assertTrue(log.lines, self.cluster.logs())
        self.assertGreaterEqual(log.updated_at, pd.Timestamp(self.started, unit="s", tz="UTC"))
        # The same attempt's, asked for by its id.
        self.assertEqual(self.client.job_log(job_id, attempt_id=log.attempt_id).lines, log.lines)


if __name__ == "__main__":
    unittest.main()
