"""A tuned sweep with repeats trained by the real ablate-train under a real worker, read back
through ablate.Client: each job's part in its cell's tuning (trial with its rung and point, or
the final job with the learning rate and weight decay its tuning chose), per cell the number of
trials, as `ablate results` shows them (TRIALS, TUNED LR, TUNED WD), and the repeat's seed as
a grid column that a trial has no value of."""

import math
import pathlib
import shutil
import tempfile
import unittest

import pandas as pd

import ablate
import ablate.export
from cluster import Cluster, USER_TOKEN, bin_dir


def tuned_sweep(checkpoint_root):
    """Three learning rates, eta 3: 3 trials of 4 steps (with the first seed), then the best
    trained for 12 steps once per seed of 2."""
    return {
        "name": "py-tuned",
        "grid": {"model": ["tiny"]},
        "repeats": 2,
        "tuning": {"parameters": {"learning_rate": [1e-7, 3e-3, 1e-6]}, "min_steps": 4},
        "fixed": {"steps": 12, "batch_size": 4, "context_length": 32, "warmup_steps": 1,
                  "log_every": 1, "eval_batches": 2, "weight_decay": 0.05},
        "max_attempts": 1,
        "checkpoint_root": str(checkpoint_root),
    }


@unittest.skipUnless((bin_dir() / "ablate-train").exists(), "ablate-train is not built")
class TuningResultsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(workers=1)
        cls.client = ablate.Client(cls.cluster.address, token=USER_TOKEN)
        cls.sweep = cls.client.submit(tuned_sweep(cls.cluster.checkpoint_root))
        # The watch ends when every job ended: with tuning, once the final job did.
        cls.changes = list(cls.client.watch(cls.sweep.sweep_id))

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.cluster.close()

    def test_trials_carry_their_rung_and_point(self):
        jobs = self.client.jobs(self.sweep.sweep_id)
        self.assertEqual(jobs["role"].tolist(), ["trial", "trial", "trial", "final", "final"],
                         self.cluster.logs())
        trials = jobs[jobs["role"] == "trial"]
        self.assertEqual(trials["trial_rung"].tolist(), [0, 0, 0])
        self.assertEqual(trials["trial_point"].tolist(), [0, 1, 2])
        self.assertEqual(trials["tuned_learning_rate"].tolist(), [1e-7, 3e-3, 1e-6])
        self.assertEqual(trials["tuned_weight_decay"].tolist(), [0.05, 0.05, 0.05])
        self.assertEqual(self.changes[-1].sweep["state"], "completed")

    def test_the_final_job_carries_the_chosen_values(self):
        results = self.client.results(self.sweep.sweep_id)
        final = results[results["role"] == "final"]
        self.assertEqual(len(final), 2, self.cluster.logs())
        self.assertEqual(final["state"].tolist(), ["succeeded"] * 2)
        self.assertEqual(final["data_seed"].tolist(), [1, 2])
        row = final.iloc[0]
        # 3e-3 moves the tiny model in four steps; the others barely do.
        self.assertEqual(row["tuned_learning_rate"], 3e-3)
        self.assertEqual(row["tuned_weight_decay"], 0.05)
        self.assertTrue(math.isnan(row["trial_rung"]))
        self.assertEqual(row["trials"], 3)
        self.assertEqual(row["step"], 12)
        self.assertEqual(results["trials"].tolist(), [3] * 5)

    def test_the_repeat_seed_is_a_grid_column_after_the_grid(self):
        results = self.client.results(self.sweep.sweep_id)
        self.assertEqual(ablate.export.grid_columns(results), ["model", "seed"])
        self.assertEqual(results["seed"].dtype, "Int64")
        self.assertEqual(results["seed"].tolist(), [pd.NA] * 3 + [1, 2])
        pd.testing.assert_series_equal(self.client.jobs(self.sweep.sweep_id)["seed"],
                                       results["seed"])
        out = pathlib.Path(tempfile.mkdtemp(prefix="ablate-tuned-"))
        self.addCleanup(shutil.rmtree, out)
        # A trial's missing seed is left out of its hyperparameters, not written as one.
        runs = ablate.export.export(self.client, self.sweep.sweep_id, "tensorboard", out)
        self.assertEqual(len(runs), 6)
        read = pd.read_csv(ablate.export.export(self.client, "py-tuned", "csv", out)[0])
        self.assertEqual(list(read.columns[2:4]), ["model", "seed"])


if __name__ == "__main__":
    unittest.main()
