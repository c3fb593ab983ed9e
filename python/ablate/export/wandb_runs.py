"""Weights & Biases offline runs, written by the wandb package itself (mode "offline": nothing
leaves the machine until `wandb sync`). One run per job, grouped by sweep."""

from __future__ import annotations

import json
import math
import pathlib

import pandas as pd
import wandb

from ablate.export import runs


def write(sweep: str, results: pd.DataFrame, metrics: pd.DataFrame, dimensions: list[str],
          out: pathlib.Path) -> list[pathlib.Path]:
    """OUT/wandb/offline-run-<time>-<job_id>/ per job; returns those folders.

    Config: the grid values, then every resolved TrainConfig field under "train_config";
    tags: "dimension=value" per grid value; summary: the final metrics, state and provenance;
    history: each step's points, `_timestamp` the trainer's wall time.
    """
    written = []
    settings = wandb.Settings(console="off", disable_git=True, save_code=False,
                              x_disable_stats=True, silent=True)
    for row, points in runs.jobs_with_points(results, metrics):
        grid = runs.hparams(row, dimensions)
        config = dict(grid)
        if row["config_json"]:
            config["train_config"] = json.loads(row["config_json"])
        run = wandb.init(mode="offline", dir=str(out), project=sweep, group=sweep,
                         name=row["job_id"], id=row["job_id"], config=config,
                         tags=[f"{d}={v}" for d, v in grid.items()],
                         reinit="finish_previous", settings=settings)
        for step, at_step in points.groupby("step", sort=True):
            data = dict(zip(at_step["name"], at_step["value"].astype(float)))
            wall_time = at_step["wall_time"].max()
            if not math.isnan(wall_time):
                data["_timestamp"] = float(wall_time)
            run.log(data, step=int(step))
        run.summary.update(runs.final_metrics(row, dimensions))
        run.summary.update({"state": row["state"], "code_version": row["code_version"],
                            "device": row["device"], "data_sha256": row["data_sha256"]})
        written.append(pathlib.Path(run.dir).parent)
        run.finish()
    # Stops wandb's service process now rather than at interpreter exit.
    wandb.teardown()
    return written
