"""What the per-run formats (TensorBoard, W&B) take from the client's DataFrames."""

from __future__ import annotations

import math
from typing import Any, Iterator

import pandas as pd

from ablate import frames

# Columns of Client.results that are not a final metric.
_NOT_METRICS = {*frames.JOB_COLUMNS, *frames.PROVENANCE_COLUMNS, *frames.CELL_COLUMNS}


def plain(value: Any) -> Any:
    """A pandas or numpy scalar as the Python bool, int, float or str it holds."""
    return value.item() if hasattr(value, "item") else value


def hparams(row: pd.Series, dimensions: list[str]) -> dict[str, Any]:
    """The job's values of `dimensions` (the grid's, and `dropped` when the export includes
    dropped jobs), as plain Python scalars; one it has none of (a tuning trial's repeat seed)
    left out, since neither TensorBoard nor W&B holds a missing value."""
    return {d: plain(row[d]) for d in dimensions if not pd.isna(row[d])}


def final_metrics(row: pd.Series, dimensions: list[str]) -> dict[str, float]:
    """The job's final value of each series it reported (NaN ones left out)."""
    return {name: float(value) for name, value in row.items()
            if name not in _NOT_METRICS and name not in dimensions
            and value is not None and not (isinstance(value, float) and math.isnan(value))}


def jobs_with_points(results: pd.DataFrame,
                     metrics: pd.DataFrame) -> Iterator[tuple[pd.Series, pd.DataFrame]]:
    """Each job's results row with its metric points, sorted by step then name."""
    by_job = {job: points.sort_values(["step", "name"])
              for job, points in metrics.groupby("job_id", sort=False)}
    empty = metrics.iloc[0:0]
    for _, row in results.iterrows():
        yield row, by_job.get(row["job_id"], empty)
