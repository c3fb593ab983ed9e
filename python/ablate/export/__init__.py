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

Jobs an update of the sweep dropped (their cells no longer in its file) are left out, as by
`ablate results` and Client.results; --include-dropped writes them too, marked: True in the
results' `dropped` column, and `dropped` among a run's HParams (TensorBoard) or its config and
tags (W&B) beside the grid values.

The `ablate` CLI's `export` command runs this program. The coordinator's address and the token
come as for the CLI: --coordinator or $ABLATE_COORDINATOR; --token-file, $ABLATE_TOKEN_FILE or
$ABLATE_TOKEN. Exit status as the CLI's: 0 done, 1 the coordinator refused, 2 usage (a token
that is not one, or a format whose package is not installed), 3 unreachable.
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import sys
from types import ModuleType
from typing import Sequence

import pandas as pd

from ablate import errors
from ablate.client import Client

FORMATS = ("csv", "parquet", "tensorboard", "wandb")
# The module that writes each format; those of the optional formats import their package.
_WRITERS = {"csv": "ablate.export.tables", "parquet": "ablate.export.tables",
            "tensorboard": "ablate.export.tensorboard_runs", "wandb": "ablate.export.wandb_runs"}
# A format's package beyond the writer's own imports: pandas reaches pyarrow only when writing.
_NEEDS = {"parquet": "pyarrow"}


def grid_columns(results: pd.DataFrame) -> list[str]:
    """The grid dimensions: the columns of Client.results between index and state."""
    columns = list(results.columns)
    return columns[columns.index("index") + 1:columns.index("state")]


def writer(fmt: str) -> ModuleType:
    """The module that writes format `fmt`, its package imported.
    Raises ImportError, saying what to install, when the package is not installed."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    try:
        if fmt in _NEEDS:
            importlib.import_module(_NEEDS[fmt])
        return importlib.import_module(_WRITERS[fmt])
    except ImportError as error:
        raise ImportError(f"--format {fmt} needs a package that is not installed ({error}): "
                          f"pip install 'ablate[{fmt}]'") from error


def export(client: Client, sweep: str, fmt: str, out: pathlib.Path, *,
           include_dropped: bool = False) -> list[pathlib.Path]:
    """Writes `sweep`'s results in format `fmt` under `out` (created); returns the files or run
    folders written. With `include_dropped`, the jobs an update dropped too (see above).
    Raises ImportError, before asking the coordinator anything, when the format's package is
    not installed (`pip install 'ablate[FORMAT]'`); ablate.errors.AblateError when the
    coordinator refuses."""
    module = writer(fmt)
    # A unique name stands for the id, which the runs written are named by either way.
    sweep = client.sweep_id(sweep)
    results = client.results(sweep, include_dropped=include_dropped)
    metrics = client.metrics(sweep, include_dropped=include_dropped)
    out.mkdir(parents=True, exist_ok=True)  # once there is something to write
    if fmt in ("csv", "parquet"):
        return module.write(results, metrics, fmt, out)
    # A run's mark is among its labels (HParams; W&B config and tags), given only where runs
    # of both kinds are written: otherwise it would be False on every run.
    labels = grid_columns(results) + (["dropped"] if include_dropped else [])
    return module.write(sweep, results, metrics, labels, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ablate-export", description="Export a sweep's results and metrics.")
    parser.add_argument("sweep", metavar="SWEEP", help="the sweep's id or unique name")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--out", required=True, type=pathlib.Path, help="folder to write")
    parser.add_argument("--include-dropped", action="store_true",
                        help="also the jobs an update of the sweep dropped (left out by "
                        "default, as by `ablate results`), marked dropped")
    parser.add_argument("--coordinator", help="HOST:PORT (default: $ABLATE_COORDINATOR)")
    parser.add_argument("--token-file", help="file whose first line is your token "
                        "(default: $ABLATE_TOKEN_FILE, else $ABLATE_TOKEN)")
    args = parser.parse_args(argv)
    try:
        client = Client(args.coordinator, token_file=args.token_file)
    except (errors.Unauthenticated, OSError) as error:
        # Found here, before any call: a usage error, as the CLI's own reading of the token.
        print(f"ablate-export: {error}", file=sys.stderr)
        return 2
    try:
        with client:
            written = export(client, args.sweep, args.format, args.out,
                             include_dropped=args.include_dropped)
    except errors.Unavailable as error:
        print(f"ablate-export: {error.message}", file=sys.stderr)
        return 3
    except errors.AblateError as error:
        print(f"ablate-export: {error.message}", file=sys.stderr)
        return 1
    except (ImportError, OSError, ValueError) as error:
        print(f"ablate-export: {error}", file=sys.stderr)
        return 2
    print(f"exported {args.sweep} as {args.format}: {len(written)} paths under {args.out}")
    return 0
