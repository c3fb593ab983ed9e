"""TensorBoard event files, written with TensorBoard's own event writer and protos (the ones
PyTorch's SummaryWriter uses), so no TensorFlow is needed: one run folder per job, each metric
series a scalar tag, and the HParams plugin's data, so TensorBoard's HParams tab tabulates the
grid against the final metrics."""

from __future__ import annotations

import math
import pathlib

import pandas as pd
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from ablate.export import runs


def _write_events(folder: pathlib.Path, events: list[event_pb2.Event]) -> pathlib.Path:
    # An earlier export's file beside the new one would show TensorBoard every point twice.
    for old in folder.glob("events.out.tfevents.*"):
        old.unlink()
    writer = EventFileWriter(str(folder))
    for event in events:
        writer.add_event(event)
    writer.close()
    return folder


def write(sweep: str, results: pd.DataFrame, metrics: pd.DataFrame, dimensions: list[str],
          out: pathlib.Path) -> list[pathlib.Path]:
    """OUT/<job_id>/events.out.tfevents.* per job and OUT/events.out.tfevents.* holding the
    HParams experiment, each replacing the event file an earlier export wrote there; returns
    the run folders, OUT first."""
    names = sorted(metrics["name"].unique())
    experiment = hp.hparams_config_pb(hparams=[hp.HParam(d) for d in dimensions],
                                      metrics=[hp.Metric(n) for n in names])
    written = [_write_events(out, [event_pb2.Event(summary=experiment)])]
    for row, points in runs.jobs_with_points(results, metrics):
        start = points["wall_time"].min() if len(points) else float("nan")
        start = 0.0 if math.isnan(start) else float(start)
        events = [event_pb2.Event(wall_time=start, summary=hp.hparams_pb(
            runs.hparams(row, dimensions), trial_id=row["job_id"]))]
        for point in points.itertuples(index=False):
            wall_time = 0.0 if math.isnan(point.wall_time) else float(point.wall_time)
            value = summary_pb2.Summary.Value(tag=point.name, simple_value=float(point.value))
            events.append(event_pb2.Event(wall_time=wall_time, step=int(point.step),
                                          summary=summary_pb2.Summary(value=[value])))
        written.append(_write_events(out / row["job_id"], events))
    return written
