"""CSV and Parquet: the client's two DataFrames as they are, Parquet through pyarrow."""

from __future__ import annotations

import pathlib

import pandas as pd


def write(results: pd.DataFrame, metrics: pd.DataFrame, fmt: str,
          out: pathlib.Path) -> list[pathlib.Path]:
    """DIR/results.FMT and DIR/metrics.FMT, FMT csv or parquet."""
    written = []
    for name, frame in (("results", results), ("metrics", metrics)):
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False, engine="pyarrow")
        written.append(path)
    return written
