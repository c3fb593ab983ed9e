"""Proto messages to pandas rows: the one place that decides the columns of the client's
DataFrames, so the client and every export format name things alike.

Column conventions: states are lower-case words ("succeeded") in a Categorical ordered as the
proto's enum (pending before assigned, ...); times are UTC pandas Timestamps (NaT when unset);
each grid dimension is a column named after it, holding the resolved value from the job's
TrainConfig where the dimension is one of its fields (context_length "32K" becomes 32768,
optimizer_args.beta2 a float) and the value as written in the sweep file otherwise. A
dimension's dtype follows its TrainConfig field: integers "Int64" (<NA> for a job without a
value, as a tuning trial without the repeat's seed), reals float64, flags "boolean". Every
frame has the same dtypes with rows or without.
"""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd
from google.protobuf.descriptor import FieldDescriptor

from ablate.v1 import config_pb2, job_pb2, metrics_pb2, sweep_pb2


def state_name(enum_type: Any, value: int) -> str:
    """JOB_STATE_SUCCEEDED -> "succeeded"."""
    return enum_type.Name(value).rsplit("_STATE_", 1)[-1].lower()


def _states(enum_type: Any) -> pd.CategoricalDtype:
    """The enum's states but UNSPECIFIED, in the proto's order."""
    return pd.CategoricalDtype([state_name(enum_type, v.number) for v in
                                enum_type.DESCRIPTOR.values if v.number != 0], ordered=True)


# What pandas makes of a column of str: object under pandas 2, "str" under pandas 3. Given
# explicitly, an empty frame's text columns match a full one's.
TEXT = pd.Series([""]).dtype
TIME = pd.DatetimeTZDtype("ns", "UTC")
JOB_STATES = _states(job_pb2.JobState)
SWEEP_STATES = _states(sweep_pb2.SweepState)

SWEEP_COLUMNS = {
    "sweep_id": TEXT, "name": TEXT, "state": SWEEP_STATES, "total": "int64",
    "pending": "int64", "assigned": "int64", "running": "int64", "succeeded": "int64",
    "failed": "int64", "cancelled": "int64", "dropped": "int64", "dropped_live": "int64",
    "priority": "int64", "created_at": TIME,
    "description": TEXT}
# A job's columns: these two, then its grid dimensions (job_columns), then the rest.
JOB_ID_COLUMNS = {"job_id": TEXT, "index": "int64"}
JOB_COLUMNS = {
    **JOB_ID_COLUMNS, "state": JOB_STATES, "dropped": "bool", "attempts": "int64",
    "max_attempts": "int64", "uncounted_attempts": "int64", "step": "int64",
    "last_loss": "float64", "final_eval_loss": "float64", "worker_id": TEXT, "message": TEXT, "created_at": TIME,
    "updated_at": TIME, "config_hash": TEXT, "role": TEXT, "trial_rung": "float64",
    "trial_point": "float64", "tuned_learning_rate": "float64", "tuned_weight_decay": "float64"}
PROVENANCE_COLUMNS = {
    "code_version": TEXT, "seed": "int64", "data_seed": "int64", "data_sha256": TEXT,
    "device": TEXT, "optimizer_state_bytes_per_parameter": "float64", "config_json": TEXT}
METRIC_COLUMNS = {"job_id": TEXT, "name": TEXT, "step": "int64", "value": "float64",
                  "wall_time": "float64"}
# Client.results' columns that hold a fact of the job's cell, the same on each of its jobs:
# the number of trials its tuning ran.
CELL_COLUMNS = {"trials": "int64"}
# The series Client.results always has a column of, so that a table of it (pivot_table(
# values="eval/loss")) works before any job has evaluated.
RESULT_METRIC = "eval/loss"
# The dimension a sweep's `repeats` adds after its grid (sweep/grid.h, kRepeatDimension).
REPEAT_DIMENSION = "seed"

_INTEGER_TYPES = {FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                  FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64}
_REAL_TYPES = {FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE}
_CONFIG_FIELDS = config_pb2.TrainConfig.DESCRIPTOR.fields_by_name


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
        # Jobs an update dropped, in none of the counts before (JobCounts.dropped), and those of
        # them not ended, which keep the sweep active.
        "dropped": counts.dropped, "dropped_live": counts.dropped_live,
        "priority": sweep.spec.priority, "created_at": timestamp(sweep.created_at),
        "description": sweep.spec.description,
    }


def _is_repeated(field: FieldDescriptor) -> bool:
    # protobuf 5.29 added is_repeated; later releases dropped label.
    repeated = getattr(field, "is_repeated", None)
    return repeated if repeated is not None else field.label == FieldDescriptor.LABEL_REPEATED


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _field_of(dimension: str) -> tuple[FieldDescriptor | None, str]:
    """The TrainConfig field a dimension sets, and the key within it for a map field's
    ("optimizer_args.beta2": optimizer_args, "beta2"); None for another name."""
    name, _, key = dimension.partition(".")
    field = _CONFIG_FIELDS.get(name)
    if field is None or bool(key) != _is_map(field):
        return None, ""
    return field, key


def dimension_dtype(dimension: str) -> Any:
    """The dtype of a grid dimension's column: its TrainConfig field's, nullable for integers
    and flags; text where the config has no such scalar (or map entry)."""
    field, key = _field_of(dimension)
    if field is not None and key:
        field = field.message_type.fields_by_name["value"]
    if field is None or _is_repeated(field):
        return TEXT
    if field.cpp_type in _INTEGER_TYPES:
        return "Int64"
    if field.cpp_type in _REAL_TYPES:
        return "float64"
    if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return "boolean"
    return TEXT


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def grid_values(spec: job_pb2.JobSpec) -> dict[str, Any]:
    """The job's cell, dimension by dimension in grid order, resolved where the config can."""
    values: dict[str, Any] = {}
    for cell in spec.cell:
        field, key = _field_of(cell.dimension)
        if field is None or (not key and (_is_repeated(field) or field.message_type)):
            values[cell.dimension] = cell.value
        elif key:
            # An optimizer's setting its optimizer does not declare stays out of the config.
            values[cell.dimension] = getattr(spec.config, field.name).get(
                key, _number(cell.value))
        else:
            values[cell.dimension] = getattr(spec.config, cell.dimension)
    return values


def dimensions(spec: sweep_pb2.SweepSpec, jobs: Iterable[job_pb2.Job]) -> list[str]:
    """The grid dimensions of a sweep's jobs, in a fixed order: the spec's grid, the repeat's
    seed when it has repeats, then any other dimension a job's cell has (one an update of the
    spec took out of the grid) in the order the jobs have them."""
    names = [d.name for d in spec.grid]
    if spec.repeats and REPEAT_DIMENSION not in names:
        names.append(REPEAT_DIMENSION)
    seen = set(names)
    for job in jobs:
        for cell in job.spec.cell:
            if cell.dimension not in seen:
                seen.add(cell.dimension)
                names.append(cell.dimension)
    return names


def job_columns(grid: list[str]) -> dict[str, Any]:
    """Client.jobs' columns and dtypes for a sweep of these grid dimensions."""
    columns = dict(JOB_ID_COLUMNS)
    columns.update((d, dimension_dtype(d)) for d in grid)
    columns.update((name, dtype) for name, dtype in JOB_COLUMNS.items()
                   if name not in columns)
    return columns


def job_row(job: job_pb2.Job) -> dict[str, Any]:
    """One job: its id and index, its grid values, then JOB_COLUMNS' state and progress.
    `dropped` is Job.dropped: an update of the sweep left the job's cell out of its file (the
    job is kept with its results, but is none of the sweep's cells now). `max_attempts` bounds
    the attempts less `uncounted_attempts` (Job.uncounted_attempts: those its worker
    interrupted, and those before a retry)."""
    row: dict[str, Any] = {"job_id": job.spec.job_id, "index": job.spec.index}
    row.update(grid_values(job.spec))
    row.update({
        "state": state_name(job_pb2.JobState, job.state), "dropped": job.dropped,
        "attempts": job.attempts, "max_attempts": job.max_attempts,
        "uncounted_attempts": job.uncounted_attempts, "step": job.step,
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
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS)).astype(METRIC_COLUMNS)


def frame(rows: list[dict[str, Any]], columns: dict[str, Any]) -> pd.DataFrame:
    """Rows as a DataFrame of `columns` (name -> dtype), in that order and with those dtypes
    whether or not there are rows; a row without a column's value has it missing there."""
    return pd.DataFrame({name: pd.Series([row.get(name) for row in rows], dtype=dtype)
                         for name, dtype in columns.items()})

