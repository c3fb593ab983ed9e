"""Jobs an update of a sweep dropped, through the real binaries: a two-cell sweep trained by a
real worker, then `ablate submit --update` with its file edited so that one cell trains fewer
steps (its old job dropped, a new one run in the same cell). Client.results and Client.metrics
and `ablate export` in every format leave the dropped job out, as `ablate results` does, so a
pivot of the cell is the new run's value, not a mean with the old one; asked to, they include
it, marked in the `dropped` column (a TensorBoard HParam, a W&B config value and tag)."""

import io
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import unittest

import pandas as pd
import pyarrow.parquet as pq

import ablate
import ablate.export
from cluster import Cluster, USER_TOKEN, bin_dir, tiny_sweep
from wandb_log import wandb_records

NAME = "py-dropped"
EDITED_RATE = 5e-3  # the cell whose config the update changes


@unittest.skipUnless((bin_dir() / "ablate-train").exists(), "ablate-train is not built")
class DroppedResultsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(workers=1)
        cls.client = ablate.Client(cls.cluster.address, token=USER_TOKEN)
        cls.out = pathlib.Path(tempfile.mkdtemp(prefix="ablate-dropped-"))
        sweep = tiny_sweep(NAME, cls.cluster.checkpoint_root)
        cls.sweep_id = cls.client.submit(sweep).sweep_id
        list(cls.client.watch(cls.sweep_id))
        before = cls.client.jobs(cls.sweep_id)
        cls.dropped_id = before.loc[before["learning_rate"] == EDITED_RATE, "job_id"].item()
        sweep["overrides"] = [{"when": {"learning_rate": [EDITED_RATE]}, "set": {"steps": 4}}]
        edited = cls.out / f"{NAME}.yaml"
        edited.write_text(json.dumps(sweep))  # JSON is YAML
        cls.update = cls.ablate("submit", "--update", str(edited))
        if cls.update.returncode != 0:
            cls.tearDownClass()
            raise AssertionError(f"submit --update failed: {cls.update.stderr}")
        list(cls.client.watch(cls.sweep_id))

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.cluster.close()
        shutil.rmtree(cls.out, ignore_errors=True)

    @classmethod
    def ablate(cls, *args):
        return subprocess.run(
            [str(bin_dir() / "ablate"), "--coordinator", cls.cluster.address, *args],
            env={**os.environ, "ABLATE_TOKEN": USER_TOKEN}, capture_output=True, text=True,
            timeout=120)

    def test_the_update_dropped_the_edited_cells_job_and_ran_a_new_one(self):
        self.assertIn("1 job reused, 1 added, 1 no longer in the file", self.update.stdout)
        jobs = self.client.jobs(self.sweep_id)
        self.assertEqual(jobs["dropped"].dtype, "bool")
        self.assertEqual(jobs.loc[jobs["dropped"], "job_id"].tolist(), [self.dropped_id])
        self.assertEqual(jobs["state"].tolist(), ["succeeded"] * 3, self.cluster.logs())
        # The sweep's counts are its cells' jobs; the dropped one is counted apart.
        sweep = self.client.sweeps().set_index("sweep_id").loc[self.sweep_id]
        self.assertEqual((sweep["total"], sweep["succeeded"], sweep["dropped"],
                          sweep["dropped_live"]), (2, 2, 1, 0))
        self.assertIn(" 2/2 +1 dropped ", self.ablate("ls").stdout)
        self.assertIn("2 jobs: 2 succeeded; 1 more dropped by an update",
                      self.ablate("status", NAME).stdout)

    def test_results_and_metrics_leave_the_dropped_job_out_as_ablate_results_does(self):
        results = self.client.results(self.sweep_id)
        self.assertEqual(len(results), 2)
        self.assertNotIn(self.dropped_id, set(results["job_id"]))
        self.assertFalse(results["dropped"].any())
        metrics = self.client.metrics(self.sweep_id)
        self.assertEqual(set(metrics["job_id"]), set(results["job_id"]))
        # The README's pivot: the edited cell's value is its new run's, as `ablate results`
        # says, not a mean with the dropped run's.
        table = results.pivot_table(index="model", columns="learning_rate", values="eval/loss")
        new = results.loc[results["learning_rate"] == EDITED_RATE].squeeze()
        self.assertEqual(new["step"], 4)
        self.assertEqual(table.loc["tiny", EDITED_RATE], new["eval/loss"])
        cli = self.ablate("results", NAME, "--csv")
        self.assertEqual(cli.returncode, 0, cli.stderr)
        cells = pd.read_csv(io.StringIO(cli.stdout)).set_index("learning_rate")
        self.assertEqual(cells.loc[EDITED_RATE, "n"], 1)
        self.assertAlmostEqual(cells.loc[EDITED_RATE, "mean"], new["eval/loss"], places=12)

    def test_include_dropped_marks_the_dropped_job(self):
        results = self.client.results(self.sweep_id, include_dropped=True)
        self.assertEqual(len(results), 3)
        self.assertEqual(results.loc[results["dropped"], "job_id"].tolist(), [self.dropped_id])
        old = results.set_index("job_id").loc[self.dropped_id]
        self.assertEqual((old["learning_rate"], old["step"], old["state"]),
                         (EDITED_RATE, 6, "succeeded"))
        self.assertFalse(pd.isna(old["eval/loss"]))
        metrics = self.client.metrics(self.sweep_id, include_dropped=True)
        self.assertEqual(set(metrics["job_id"]), set(results["job_id"]))

    def test_ablate_export_csv_leaves_it_out_unless_asked(self):
        for flags, rows in (([], 2), (["--include-dropped"], 3)):
            with self.subTest(flags=flags):
                out = self.out / f"csv{len(flags)}"
                done = self.ablate("export", NAME, "--format", "csv", "--out", str(out), *flags)
                self.assertEqual(done.returncode, 0, done.stderr)
                results = pd.read_csv(out / "results.csv")
                self.assertEqual(len(results), rows)
                self.assertEqual(results.loc[results["dropped"], "job_id"].tolist(),
                                 [self.dropped_id] if flags else [])
                metrics = pd.read_csv(out / "metrics.csv")
                self.assertEqual(set(metrics["job_id"]), set(results["job_id"]))

    def export(self, fmt, include_dropped):
        out = self.out / f"{fmt}-{include_dropped}"
        ablate.export.export(self.client, self.sweep_id, fmt, out,
                             include_dropped=include_dropped)
        return out

    def test_parquet_leaves_it_out_unless_asked(self):
        for include, rows in ((False, 2), (True, 3)):
            results = pq.read_table(self.export("parquet", include) / "results.parquet")
            dropped = results.to_pandas().query("dropped")["job_id"].tolist()
            self.assertEqual((results.num_rows, dropped),
                             (rows, [self.dropped_id] if include else []))

    def test_tensorboard_runs_mark_it_as_an_hparam_when_asked(self):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.plugins.hparams import plugin_data_pb2

        def hparams(folder):
            accumulator = EventAccumulator(str(folder))
            accumulator.Reload()
            content = accumulator.PluginTagToContent("hparams")
            return plugin_data_pb2.HParamsPluginData.FromString(
                content["_hparams_/session_start_info"]).session_start_info.hparams

        left_out = self.export("tensorboard", False)
        self.assertFalse((left_out / self.dropped_id).exists())
        runs = [p for p in left_out.iterdir() if p.is_dir()]
        self.assertEqual(len(runs), 2)
        self.assertNotIn("dropped", hparams(runs[0]))
        included = self.export("tensorboard", True)
        for _, job in self.client.jobs(self.sweep_id).iterrows():
            marked = hparams(included / job["job_id"])["dropped"].bool_value
            self.assertEqual(marked, job["job_id"] == self.dropped_id)

    def test_wandb_runs_mark_it_in_config_and_tags_when_asked(self):
        os.environ["WANDB_SILENT"] = "true"
        left_out = self.export("wandb", False) / "wandb"
        self.assertEqual(len(list(left_out.glob("offline-run-*"))), 2)
        self.assertEqual(list(left_out.glob(f"offline-run-*-{self.dropped_id}")), [])
        included = self.export("wandb", True) / "wandb"
        (run_dir,) = included.glob(f"offline-run-*-{self.dropped_id}")
        (log,) = run_dir.glob("*.wandb")
        (run,) = [r.run for r in wandb_records(log) if r.WhichOneof("record_type") == "run"]
        self.assertIn("dropped=True", run.tags)
        self.assertEqual({i.key: i.value_json for i in run.config.update}["dropped"], "true")


if __name__ == "__main__":
    unittest.main()
