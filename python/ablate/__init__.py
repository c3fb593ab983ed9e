"""Ablate from Python: `Client` reads sweeps, jobs, results and metrics as pandas DataFrames,
submits, cancels, retries and watches sweeps and reads a job's log; `ablate.export` writes a
sweep's results as CSV, Parquet, TensorBoard event files or W&B offline runs; `ablate.prepare`
tokenizes text into a dataset the trainer reads.

    import ablate
    client = ablate.Client("127.0.0.1:7070", token=...)
    results = client.results("tiny-grid-1a2b3c4d")
"""

from ablate.client import Client
from ablate.errors import (AblateError, AlreadyExists, DeadlineExceeded, FailedPrecondition,
                           InvalidArgument, NotFound, PermissionDenied, Unauthenticated,
                           Unavailable)
from ablate.replies import Change, JobLog, Retried, Submitted

__all__ = ["AblateError", "AlreadyExists", "Change", "Client", "DeadlineExceeded",
           "FailedPrecondition", "InvalidArgument", "JobLog", "NotFound", "PermissionDenied",
           "Retried", "Submitted", "Unauthenticated", "Unavailable"]
