"""`ablate-export SWEEP --format csv|parquet|tensorboard|wandb --out DIR`: a sweep's results
where researchers read them.

  csv, parquet  DIR/results.{csv,parquet}: one row per job (Client.results), and
                DIR/metrics.{csv,parquet}: every metric point, long (Client.metrics).
  tensorboard   DIR/<job_id>/events.out.tfevents.*: one run per job, each series a scalar
                tag at its step and wall time, and the job's grid values as its HParams;
                DIR holds the HParams experiment (every dimension, every final metric).
  wandb         DIR/wandb/offline-run-*: one W&B offline run per job (group: the sweep; config:
                the grid values and the resolved TrainConfig; tags: dimension=value), every
                point logged at its step; `wandb sync DIR/wandb/offline-run-*` uploads them.

The `ablate` CLI's `export` command runs this program. The coordinator's address and the token
come as for the CLI: --coordinator or $ABLATE_COORDINATOR, --token-file or $ABLATE_TOKEN.
Exit status as the CLI's: 0 done, 1 the coordinator refused, 2 usage, 3 unreachable.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Sequence

import pandas as pd

from ablate import errors
from ablate.client import Client

FORMATS = ("csv", "parquet", "tensorboard", "wandb")


def grid_columns(results: pd.DataFrame) -> list[str]:
    """The grid dimensions: the columns of Client.results between index and state."""
    columns = list(results.columns)
    return columns[columns.index("index") + 1:columns.index("state")]


def export(client: Client, sweep: str, fmt: str, out: pathlib.Path) -> list[pathlib.Path]:
    """Writes `sweep`'s results in format `fmt` under `out` (created); returns the files or run
    folders written.
    Raises ablate.errors.AblateError when the coordinator refuses, ImportError when the
    format's package is not installed (`pip install 'ablate[FORMAT]'`)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    # A unique name stands for the id, which the runs written are named by either way.
    sweep = client.sweep_id(sweep)
    results = client.results(sweep)
    metrics = client.metrics(sweep)
    out.mkdir(parents=True, exist_ok=True)  # once there is something to write
    if fmt in ("csv", "parquet"):
        from ablate.export import tables
        return tables.write(results, metrics, fmt, out)
    dimensions = grid_columns(results)
    if fmt == "tensorboard":
        from ablate.export import tensorboard_runs as writer
    else:
        from ablate.export import wandb_runs as writer
    return writer.write(sweep, results, metrics, dimensions, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ablate-export", description="Export a sweep's results and metrics.")
    parser.add_argument("sweep", metavar="SWEEP", help="the sweep's id or unique name")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--out", required=True, type=pathlib.Path, help="folder to write")
    parser.add_argument("--coordinator", help="HOST:PORT (default: $ABLATE_COORDINATOR)")
    parser.add_argument("--token-file", help="file whose first line is your token "
                        "(default: $ABLATE_TOKEN)")
    args = parser.parse_args(argv)
    try:
        with Client(args.coordinator, token_file=args.token_file) as client:
            written = export(client, args.sweep, args.format, args.out)
    except errors.Unavailable as error:
        print(f"ablate-export: cannot reach the coordinator: {error.message}", file=sys.stderr)
        return 3
    except errors.AblateError as error:
        print(f"ablate-export: {error.message}", file=sys.stderr)
        return 1
    except (ImportError, OSError, ValueError) as error:
        print(f"ablate-export: {error}", file=sys.stderr)
        return 2
    print(f"exported {args.sweep} as {args.format}: {len(written)} paths under {args.out}")
    return 0
