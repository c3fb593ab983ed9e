"""Proto messages to pandas rows: the one place that decides the columns of the client's
DataFrames, so the client and every export format name things alike.

Column conventions: states are lower-case words ("succeeded"); times are UTC pandas Timestamps
(NaT when unset); each grid dimension is a column named after it, holding the resolved value
from the job's TrainConfig where the dimension is one of its scalar fields (context_length
"32K" becomes 32768) and the value as written in the sweep file otherwise.
"""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd
from google.protobuf.descriptor import FieldDescriptor

from ablate.v1 import job_pb2, metrics_pb2, sweep_pb2

SWEEP_COLUMNS = ["sweep_id", "name", "state", "total", "pending", "assigned", "running",
                 "succeeded", "failed", "cancelled", "priority", "created_at", "description"]
JOB_COLUMNS = ["job_id", "index", "state", "attempts", "max_attempts", "step", "last_loss",
               "final_eval_loss", "worker_id", "message", "created_at", "updated_at",
               "config_hash", "role", "trial_rung", "trial_point", "tuned_learning_rate",
               "tuned_weight_decay"]
PROVENANCE_COLUMNS = ["code_version", "seed", "data_seed", "data_sha256", "device",
                      "optimizer_state_bytes_per_parameter", "config_json"]
METRIC_COLUMNS = ["job_id", "name", "step", "value", "wall_time"]
# Client.results' columns that hold a fact of the job's cell, the same on each of its jobs:
# the number of trials its tuning ran.
CELL_COLUMNS = ["trials"]


def state_name(enum_type: Any, value: int) -> str:
    """JOB_STATE_SUCCEEDED -> "succeeded"."""
    return enum_type.Name(value).rsplit("_STATE_", 1)[-1].lower()


def timestamp(ts: Any) -> pd.Timestamp:
    """A google.protobuf.Timestamp as a UTC Timestamp; NaT when it was never set."""
    if ts.seconds == 0 and ts.nanos == 0:
        return pd.NaT
    return pd.Timestamp(ts.ToNanoseconds(), unit="ns", tz="UTC")


def sweep_row(sweep: sweep_pb2.Sweep) -> dict[str, Any]:
    counts = sweep.counts
    return {
        "sweep_id": sweep.id, "name": sweep.spec.name,
        "state": state_name(sweep_pb2.SweepState, sweep.state), "total": counts.total,
        "pending": counts.pending, "assigned": counts.assigned, "running": counts.running,
        "succeeded": counts.succeeded, "failed": counts.failed, "cancelled": counts.cancelled,
        "priority": sweep.spec.priority, "created_at": timestamp(sweep.created_at),
        "description": sweep.spec.description,
    }


def _is_repeated(field: FieldDescriptor) -> bool:
    # protobuf 5.29 added is_repeated; later releases dropped label.
    repeated = getattr(field, "is_repeated", None)
    return repeated if repeated is not None else field.label == FieldDescriptor.LABEL_REPEATED


def grid_values(spec: job_pb2.JobSpec) -> dict[str, Any]:
    """The job's cell, dimension by dimension in grid order, resolved where the config can."""
    fields = spec.config.DESCRIPTOR.fields_by_name
    values: dict[str, Any] = {}
    for cell in spec.cell:
        field = fields.get(cell.dimension)
        scalar = (field is not None and not _is_repeated(field)
                  and field.type != FieldDescriptor.TYPE_MESSAGE)
        values[cell.dimension] = getattr(spec.config, cell.dimension) if scalar else cell.value
    return values


def job_row(job: job_pb2.Job) -> dict[str, Any]:
    """One job: its id and index, its grid values, then JOB_COLUMNS' state and progress."""
    row: dict[str, Any] = {"job_id": job.spec.job_id, "index": job.spec.index}
    row.update(grid_values(job.spec))
    row.update({
        "state": state_name(job_pb2.JobState, job.state), "attempts": job.attempts,
        "max_attempts": job.max_attempts, "step": job.step,
        "last_loss": job.last_loss if job.HasField("last_loss") else float("nan"),
        "final_eval_loss": (job.final_eval_loss if job.HasField("final_eval_loss")
                            else float("nan")),
        "worker_id": job.worker_id, "message": job.message,
        "created_at": timestamp(job.created_at), "updated_at": timestamp(job.updated_at),
        "config_hash": job.spec.config_hash,
    })
    row.update(tuning_row(job.spec))
    return row


def tuning_row(spec: job_pb2.JobSpec) -> dict[str, Any]:
    """The job's part in its cell's tuning (sweep/tuning.h): `role` is "trial" for a trial of
    the search, "final" for a cell's final job, "job" in a sweep without tuning. A trial has
    its rung (0: the shortest budget) and point (index into the search); tuned_learning_rate
    and tuned_weight_decay are the values tuning gave the job: a trial's point, or the values
    the final job's cell chose (`ablate results`' TUNED LR, TUNED WD). The rest is NaN."""
    nan = float("nan")
    if spec.HasField("trial"):
        return {"role": "trial", "trial_rung": spec.trial.rung, "trial_point": spec.trial.point,
                "tuned_learning_rate": spec.config.learning_rate,
                "tuned_weight_decay": spec.config.weight_decay}
    if spec.HasField("tuned"):
        return {"role": "final", "trial_rung": nan, "trial_point": nan,
                "tuned_learning_rate": spec.tuned.learning_rate,
                "tuned_weight_decay": spec.tuned.weight_decay}
    return {"role": "job", "trial_rung": nan, "trial_point": nan, "tuned_learning_rate": nan,
            "tuned_weight_decay": nan}


def cell_key(spec: job_pb2.JobSpec, grid_size: int) -> tuple:
    """The job's values on the sweep's `grid_size` grid dimensions, without the repeat's seed
    that follows them: a cell's trials and final jobs share it."""
    return tuple((c.dimension, c.value) for c in spec.cell[:grid_size])


def provenance_row(job: job_pb2.Job) -> dict[str, Any]:
    """What produced the job's results (empty strings and zeros before its trainer started)."""
    p = job.provenance
    return {"code_version": p.code_version, "seed": p.seed, "data_seed": p.data_seed,
            "data_sha256": p.data_sha256, "device": p.device,
            "optimizer_state_bytes_per_parameter": p.optimizer_state_bytes_per_parameter,
            "config_json": p.config_json}


def final_values(series: Iterable[metrics_pb2.MetricSeries]) -> dict[str, float]:
    """The last value of each series, by its name."""
    return {s.name: s.values[-1] for s in series if len(s.values) > 0}


def metric_rows(job_id: str, series: Iterable[metrics_pb2.MetricSeries]) -> list[tuple]:
    """Long rows (job_id, name, step, value, wall_time) of every point of `series`."""
    rows = []
    for s in series:
        wall_times = list(s.wall_times) or [float("nan")] * len(s.steps)
        rows.extend((job_id, s.name, step, value, wall)
                    for step, value, wall in zip(s.steps, s.values, wall_times))
    return rows


def metrics_frame(rows: list[tuple]) -> pd.DataFrame:
    """METRIC_COLUMNS with their dtypes, also when there is no row."""
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    return frame.astype({"job_id": "object", "name": "object", "step": "int64",
                         "value": "float64", "wall_time": "float64"})


def frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Rows as a DataFrame; `columns` when there is no row, so an empty answer keeps its shape."""
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)

