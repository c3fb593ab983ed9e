"""What `Client`'s calls give back, where a DataFrame would not fit: a submission's and a retry's
outcome, a job's log, and each message of a watch."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from ablate import frames
from ablate.v1 import sweep_pb2


@dataclasses.dataclass(frozen=True)
class Submitted:
    """What `Client.submit` got back."""

    sweep_id: str
    jobs: int  # jobs of the sweep
    already_existed: bool  # the same spec was submitted before: nothing new was queued
    dropped_cells: list[str]  # cells the sweep's constraints left out, each with its reason
    # Paths of the sweep that no connected worker's --checkpoint-root or --data-root holds:
    # their jobs wait until a worker with such a root connects. Also issued as warnings.
    warnings: list[str] = dataclasses.field(default_factory=list)
    # An update (submit(update=True)) of a stored sweep: what it did to the sweep's jobs.
    updated: bool = False
    added_jobs: int = 0  # new or changed cells, queued
    reused_jobs: int = 0  # cells the sweep already held, kept as they were
    dropped_jobs: int = 0  # jobs whose cell the file no longer has, kept and counted


@dataclasses.dataclass(frozen=True)
class Retried:
    """What `Client.retry` got back."""

    sweep_id: str
    requeued: list[str]  # ids of the jobs now pending again, in the order asked
    refused: dict[str, str]  # job id -> why it was not requeued ("SUCCEEDED: its result stands")
    dropped_left: int  # jobs in the states asked that an update of the spec dropped, left as is


@dataclasses.dataclass(frozen=True)
class JobLog:
    """What `Client.job_log` got back: the end of a job's log as its worker last sent it."""

    job_id: str
    attempt_id: int  # the attempt the lines are of; 0 when no worker has sent any yet
    lines: list[str]  # oldest first
    truncated: bool  # the log holds earlier lines than these
    updated_at: pd.Timestamp  # when the coordinator received them; NaT without lines


@dataclasses.dataclass(frozen=True)
class Change:
    """One message of `Client.watch`.

    The first is the whole sweep (delta False); each later one is what one commit of the
    coordinator changed: the sweep's state and counts, the jobs whose row changed (rows as
    `Client.jobs` gives them) and the metric points that commit appended (rows as
    `Client.metrics` gives them). After `watch` reconnected to a restarted coordinator, the
    next one is the whole sweep again (delta False).
    """

    version: int  # the coordinator's store version after the commit
    delta: bool
    # A row of `Client.sweeps`; name, description and priority (the spec's) as of the last
    # Change with delta False.
    sweep: pd.Series
    jobs: pd.DataFrame
    metrics: pd.DataFrame


def change_of(snapshot: Any, whole: Any) -> Change:
    """A SweepSnapshot as a Change; `whole` is the sweep of the last whole snapshot."""
    rows: list[tuple] = []
    for job_metrics in snapshot.metrics:
        rows.extend((job_metrics.job_id, p.name, p.step, p.value, p.wall_time)
                    for p in job_metrics.points)
    sweep = snapshot.sweep
    if snapshot.delta:
        # A delta carries the sweep's header (id, state, counts, created_at), not its spec.
        sweep = sweep_pb2.Sweep()
        sweep.CopyFrom(snapshot.sweep)
        sweep.spec.CopyFrom(whole.spec)
        if not sweep.HasField("created_at"):
            sweep.created_at.CopyFrom(whole.created_at)
    grid = frames.dimensions(whole.spec, snapshot.jobs)
    return Change(
        version=snapshot.version, delta=snapshot.delta,
        sweep=pd.Series(frames.sweep_row(sweep)),
        jobs=frames.frame([frames.job_row(j) for j in snapshot.jobs], frames.job_columns(grid)),
        metrics=frames.metrics_frame(rows))
