"""`Client`: Ablate's SweepService from Python, answering with pandas DataFrames.

A Client holds one gRPC channel to the coordinator and sends its bearer token with every call.
It is safe to use from several threads (gRPC channels are); a `watch` iterator belongs to the
thread that iterates it. Every failed call raises an `ablate.errors.AblateError` subclass that
carries the coordinator's message.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import time
import warnings
from typing import Any, Iterator, Mapping, Sequence

import grpc
import pandas as pd

from ablate import errors, frames, tokens
from ablate.replies import Change, JobLog, Retried, Submitted, change_of
from ablate.v1 import job_pb2
from ablate.v1 import sweep_service_pb2 as service_pb2
from ablate.v1 import sweep_service_pb2_grpc as service_grpc

DEFAULT_ADDRESS = "127.0.0.1:7070"
# The coordinator's own largest page (ListJobsRequest.page_size).
_JOBS_PAGE = 5000
# GetJob's max_points for "every point": the field is a uint32 the server reads as an int.
_EVERY_POINT = 2**31 - 1
# How long `watch` keeps reconnecting to a coordinator it lost, and its backoff between tries:
# the CLI's `ablate watch` (cli/commands.h, kReconnectFor; cli/commands.cc, WatchCommand).
RECONNECT_FOR_S = 300.0
_FIRST_BACKOFF_S = 0.25
_LAST_BACKOFF_S = 5.0
# The channel's own reconnection backoff, as the CLI's (cli/client.cc): a watch reconnecting to a
# restarted coordinator finds it within seconds, not after gRPC's default has grown to 2 minutes.
_CHANNEL_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 250),
                    ("grpc.max_reconnect_backoff_ms", 2000))
# The name a dict given to `submit` goes by, and the place the coordinator's parser puts before
# each of its problems ("<dict>:1:71: " or "<dict>: "): a line and column of the JSON text the
# dict was sent as, which the caller never saw.
_DICT_SOURCE = "<dict>"
_DICT_PLACE = re.compile(r"^" + re.escape(_DICT_SOURCE) + r"(?::\d+:\d+)?: ", re.MULTILINE)


class Client:
    """A connection to one coordinator's SweepService.

    Args:
        address: the coordinator's gRPC address, HOST:PORT; default $ABLATE_COORDINATOR, else
            127.0.0.1:7070 (as the `ablate` CLI).
        token: the bearer token; default the first line of `token_file`, else of the file
            $ABLATE_TOKEN_FILE names, else $ABLATE_TOKEN, as the `ablate` CLI reads it
            (surrounding whitespace dropped). Reading needs a viewer or user token; submit,
            cancel and retry a user token.
        token_file: a file whose first line is the token.
        timeout: seconds each unary call may take; `watch` has no deadline (it has
            `reconnect_for` instead).

    Raises:
        ablate.Unauthenticated: the token cannot be sent (a character gRPC metadata cannot
            carry, as a line break inside it) or is not one (a comment, or several words as
            a line of the coordinator's token file), naming where it came from; the token
            itself is never shown.
        OSError: the token file cannot be read.
    """

    def __init__(self, address: str | None = None, token: str | None = None, *,
                 token_file: str | os.PathLike | None = None, timeout: float = 30.0) -> None:
        self.address = address or os.environ.get("ABLATE_COORDINATOR") or DEFAULT_ADDRESS
        token = tokens.client_token(token, token_file)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        self._channel = grpc.insecure_channel(self.address, options=_CHANNEL_OPTIONS)
        self._stub = service_grpc.SweepServiceStub(self._channel)

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, metadata=self._metadata,
                                               timeout=self._timeout)
        except grpc.RpcError as error:
            raise self._error(method, error) from None

    def _error(self, method: str, error: grpc.RpcError) -> errors.AblateError:
        """The exception for a failed call; one that never reached the coordinator names the
        call and the address, which gRPC's own message does not."""
        failed = errors.from_rpc_error(error)
        if isinstance(failed, errors.DeadlineExceeded):
            return errors.DeadlineExceeded(failed.code, (
                f"{method}: no answer from the coordinator at {self.address} within "
                f"{_duration(self._timeout)} ({failed.message}); Client(timeout=...) waits "
                "longer"))
        if isinstance(failed, errors.Unavailable):
            return errors.Unavailable(failed.code, (
                f"{method}: cannot reach the coordinator at {self.address}: {failed.message}"))
        return failed

    def _sweep_call(self, method: str, request: Any, sweep: str) -> Any:
        """A call about `sweep`; when no sweep is found by that id, tells a job id given for a
        sweep's apart from a mistyped one."""
        try:
            return self._call(method, request)
        except errors.NotFound as error:
            raise self._not_a_sweep(sweep, error) from None

    def _not_a_sweep(self, sweep: str, error: errors.AblateError) -> errors.AblateError:
        try:
            job = self._call("GetJob", service_pb2.GetJobRequest(job_id=sweep, max_points=1))
        except errors.AblateError:
            return error
        parent = job.job.spec.sweep_id
        return errors.NotFound(error.code, (
            f"{sweep!r} is a job's id, not a sweep's: its sweep is {parent!r}. Its row is "
            f"client.jobs({parent!r}).set_index('job_id').loc[{sweep!r}], its log "
            f"client.job_log({sweep!r})"))

    # Reading.

    def sweeps(self) -> pd.DataFrame:
        """Every sweep, newest first: one row each, frames.SWEEP_COLUMNS (id, name, state,
        job counts by state, the jobs an update dropped apart in `dropped` (`dropped_live` of
        them not ended, which keep the sweep active), priority, created_at, description)."""
        response = self._call("ListSweeps", service_pb2.ListSweepsRequest())
        return frames.frame([frames.sweep_row(s) for s in response.sweeps], frames.SWEEP_COLUMNS)

    def sweep_id(self, sweep: str) -> str:
        """The id of `sweep`: an id, or a name exactly one sweep has. NotFound when neither
        (saying so when it is a job's id); FailedPrecondition, listing the ids, when several
        sweeps have the name."""
        return self._sweep(sweep).id

    def _sweep(self, sweep: str) -> Any:
        return self._sweep_call("GetSweep", service_pb2.GetSweepRequest(sweep_id=sweep), sweep)

    def job_messages(self, sweep: str) -> list:
        """The sweep's jobs as ablate.v1.Job messages, in expansion order (every page). Here
        and below, `sweep` is a sweep's id or a name exactly one sweep has."""
        jobs, token = [], ""
        while True:
            response = self._sweep_call("ListJobs", service_pb2.ListJobsRequest(
                sweep_id=sweep, page_size=_JOBS_PAGE, page_token=token), sweep)
            jobs.extend(response.jobs)
            token = response.next_page_token
            if not token:
                return jobs

    def _result_jobs(self, sweep: str, include_dropped: bool) -> list:
        """The jobs `results` and `metrics` read: those an update dropped only if asked."""
        jobs = self.job_messages(sweep)
        return jobs if include_dropped else [job for job in jobs if not job.dropped]

    def jobs(self, sweep: str) -> pd.DataFrame:
        """One row per job of `sweep`, in expansion order: job_id, index, one column per grid
        dimension (the sweep file's grid in its order, then `seed` when it has repeats; a
        tuning trial, run with the first seed, has <NA> there), then state (a Categorical in
        the order pending, assigned, running, succeeded, failed, cancelled), dropped (an
        update left its cell out of the sweep's file: `ablate status`' "(dropped)"), attempts
        (every one), max_attempts, uncounted_attempts (those max_attempts does not count: its
        worker interrupted them, or they came before a retry), step, last_loss,
        final_eval_loss, worker_id, message, created_at, updated_at, config_hash, and the job's part in its cell's tuning (role: trial, final or job;
        trial_rung, trial_point, tuned_learning_rate, tuned_weight_decay; frames.tuning_row).
        NotFound for an unknown sweep."""
        spec = self._sweep(sweep).spec
        messages = self.job_messages(sweep)
        return frames.frame([frames.job_row(job) for job in messages],
                            frames.job_columns(frames.dimensions(spec, messages)))

    def results(self, sweep: str, *, include_dropped: bool = False) -> pd.DataFrame:
        """One row per job: the columns of `jobs`, then the last value of every metric series
        the job reported (a column per series name, as "train/loss"; NaN where a job has
        none; always one of "eval/loss", so that a table of it works before any evaluation),
        then its provenance (code_version, seed, data_seed, data_sha256, device,
        optimizer_state_bytes_per_parameter, config_json; seed and data_seed only where they
        are not grid dimensions), then `trials`: the number of trials its cell's tuning ran
        (0 without tuning; `ablate results`' TRIALS). One GetJob call per job. Jobs an update
        dropped (their cells no longer in the sweep's file) are left out, as by `ablate results`,
        lest a mean mix them with the cells' runs; `include_dropped` keeps them, `dropped` True."""
        spec = self._sweep(sweep).spec
        messages = self._result_jobs(sweep, include_dropped)
        grid_size = len(spec.grid)
        grid = frames.dimensions(spec, messages)
        trials: dict[tuple, int] = {}
        for job in messages:
            if job.spec.HasField("trial") and not job.dropped:
                key = frames.cell_key(job.spec, grid_size)
                trials[key] = trials.get(key, 0) + 1
        rows, series = [], {}
        for job in messages:
            detail = self._call("GetJob", service_pb2.GetJobRequest(
                job_id=job.spec.job_id, max_points=1))
            row = frames.job_row(detail.job)
            finals = frames.final_values(detail.metrics)
            series.update(dict.fromkeys(finals, "float64"))
            row.update(finals)
            # A grid dimension named seed or data_seed keeps the cell's value, which the
            # trainer uses: <NA> on a tuning trial that is no repeat, not the seed it ran with.
            row.update((name, value) for name, value in frames.provenance_row(detail.job).items()
                       if name not in grid)
            row["trials"] = trials.get(frames.cell_key(job.spec, grid_size), 0)
            rows.append(row)
        columns = frames.job_columns(grid)
        series.setdefault(frames.RESULT_METRIC, "float64")
        columns.update(series)
        columns.update((name, dtype) for name, dtype in frames.PROVENANCE_COLUMNS.items()
                       if name not in grid)
        columns.update(frames.CELL_COLUMNS)
        return frames.frame(rows, columns)

    def metrics(self, sweep: str, names: Sequence[str] | None = None,
                max_points: int | None = None, *, include_dropped: bool = False) -> pd.DataFrame:
        """Every job's metric points as a long DataFrame: job_id, name, step, value, wall_time
        (seconds since the Unix epoch; NaN where the trainer did not say).

        Args:
            names: series to read (as "train/loss"); None or empty: every series.
            max_points: thin each series of each job evenly to at most this many points, the
                first and last kept; None keeps every point.
            include_dropped: also the jobs an update dropped, left out otherwise (as by `results`).
        """
        if max_points is not None and max_points < 1:
            raise ValueError(f"max_points must be at least 1, got {max_points}")
        rows: list[tuple] = []
        logged: set[str] = set()
        for job in self._result_jobs(sweep, include_dropped):
            detail = self._call("GetJob", service_pb2.GetJobRequest(
                job_id=job.spec.job_id, metric_names=list(names or []),
                max_points=_EVERY_POINT if max_points is None else max_points))
            rows.extend(frames.metric_rows(job.spec.job_id, detail.metrics))
            logged.update(detail.logged_metric_names)
        if names:
            _warn_of_missing_series(sweep, names, logged)
        return frames.metrics_frame(rows)

    # Writing.

    def submit(self, sweep_file: str | os.PathLike | Mapping[str, Any], *, update: bool = False,
               update_sweep: str = "", new_sweep: bool = False) -> Submitted:
        """Submits a sweep: a sweep file's path, or a dict shaped as a sweep file (grid,
        fixed, constraints, overrides, ...). The coordinator parses and validates it as
        `ablate submit` does; InvalidArgument names each offending key, a line per problem:
        for a file, placed at its line and column ("tiny-grid.yaml:3:14: grid.optimizer:
        unknown optimizer 'adamx' ..."); for a dict, by its key alone ("fixed.learnig_rate:
        unknown setting (did you mean learning_rate?)"). Needs a user token.

        A dict's values may be numpy arrays and scalars (np.logspace(-4, -2, 3)), ranges and
        tuples besides lists and plain numbers; ValueError, naming its key path
        ("grid.learning_rate[1]"), for a value of another kind.

        A path of the sweep that no connected worker's --checkpoint-root or --data-root holds
        does not fail the submit (such a worker may connect later): its warning is issued with
        `warnings.warn` and kept in `Submitted.warnings`.

        A sweep of the same name but other cells or settings (an edited file) raises
        AlreadyExists naming it: `update=True` changes that sweep, keeping its cells whose
        config is unchanged and running only new or changed ones (`update_sweep` names the
        sweep's id where several have the name), as `ablate submit --update` does;
        `new_sweep=True` adds a sweep beside it, whose cells all run again (`ablate submit
        --new`)."""
        if isinstance(sweep_file, Mapping):
            # Sent as JSON, which the coordinator's YAML parser reads too.
            text, name = json.dumps(_plain(sweep_file, "")), _DICT_SOURCE
        else:
            path = pathlib.Path(sweep_file)
            text, name = path.read_text(encoding="utf-8"), str(path)
        try:
            response = self._call("SubmitSweep", service_pb2.SubmitSweepRequest(
                sweep_file=text, sweep_file_name=name, update=update, update_sweep=update_sweep,
                new_sweep=new_sweep))
        except errors.AblateError as error:
            if name != _DICT_SOURCE or not _DICT_PLACE.search(error.message):
                raise
            # The problems' places are in the JSON text made here, not in anything the caller
            # wrote: the key path each names is the place.
            raise type(error)(error.code, _DICT_PLACE.sub("", error.message)) from None
        for warning in response.warnings:
            warnings.warn(warning, stacklevel=2)
        return Submitted(sweep_id=response.sweep.id, jobs=response.sweep.counts.total,
                         already_existed=response.already_existed,
                         dropped_cells=list(response.dropped_cells),
                         warnings=list(response.warnings), updated=response.updated,
                         added_jobs=response.added_jobs, reused_jobs=response.reused_jobs,
                         dropped_jobs=response.dropped_jobs)

    def cancel(self, id: str) -> list[str]:
        """Cancels a sweep's unfinished jobs, or one job, by id; returns the ids of the jobs
        cancelled (none when all had ended). Needs a user token."""
        response = self._call("Cancel", service_pb2.CancelRequest(id=id))
        return list(response.cancelled_job_ids)

    def retry(self, sweep: str, job_ids: Sequence[str] | None = None, *, failed: bool = False,
              cancelled: bool = False) -> Retried:
        """Runs ended jobs of `sweep` again (the RetryJobs call): each goes back to pending for
        a new attempt with the sweep's max_attempts afresh, resuming from its last
        checkpoint where one was written. Give `job_ids` (whole ids, or their part after the
        sweep's id), or `failed` and/or `cancelled` for every job of the sweep in that state
        (but those an update of the spec dropped); not both. A job asked for by id that has not
        ended, or succeeded, is refused, with why, in `Retried.refused`. Needs a user token."""
        states = [state for state, chosen in ((job_pb2.JOB_STATE_FAILED, failed),
                                              (job_pb2.JOB_STATE_CANCELLED, cancelled))
                  if chosen]
        if isinstance(job_ids, str):
            job_ids = [job_ids]
        if bool(job_ids) == bool(states):
            raise ValueError("retry: give job_ids, or failed=True and/or cancelled=True"
                             + (", not both" if states else ""))
        response = self._sweep_call("RetryJobs", service_pb2.RetryJobsRequest(
            sweep=sweep, job_ids=list(job_ids or []), states=states), sweep)
        return Retried(sweep_id=response.sweep_id, requeued=list(response.requeued_job_ids),
                       refused={r.job_id: r.reason for r in response.refused},
                       dropped_left=response.dropped_left)

    def job_log(self, job_id: str, attempt_id: int = 0) -> JobLog:
        """The end of a job's log (rank 0's) as its worker last sent it, for its newest attempt
        that sent one, or with `attempt_id` (an `Attempt.id`, as `ablate log` names it) for that
        attempt. The coordinator stores the tails of a job's 8 newest ended attempts, so they
        survive a retry and a restart of the coordinator; a running attempt's is kept in memory,
        and after a restart is empty until its worker sends it again, within seconds. An attempt
        whose tail is not held gives attempt_id 0 and no lines. NotFound for an unknown job, or
        an attempt_id that is not one of its attempts."""
        log = self._call("GetJobLog",
                         service_pb2.GetJobLogRequest(job_id=job_id, attempt_id=attempt_id))
        return JobLog(job_id=log.job_id, attempt_id=log.attempt_id, lines=list(log.lines),
                      truncated=log.truncated, updated_at=frames.timestamp(log.updated_at))

    # Following.

    def watch(self, sweep: str, *, reconnect_for: float = RECONNECT_FOR_S) -> Iterator[Change]:
        """The sweep now, then each change as the coordinator commits it, until every job has
        ended. Stop early by leaving the loop (the call is cancelled when the iterator is
        closed or collected).

        When the connection is lost after the watch began (the coordinator restarted), the
        watch reconnects as `ablate watch` does: it warns once per loss (a UserWarning naming
        the coordinator and the cause), retries with backoff (from 0.25 s, doubling up to 5 s)
        and, once back, goes on from a whole sweep again: the first Change after a reconnection
        has delta False and holds every job as it is then, since the coordinator cannot resume
        a WatchSweep stream after a version. So treat each Change with delta False as a
        replacement of the state, not an addition to it; metric points the sweep appended while
        the connection was down are not sent (`metrics` reads them). Any other error, or a
        coordinator unreachable before the first Change, raises at once, as before.

        Args:
            reconnect_for: seconds to keep reconnecting after a loss before raising
                `ablate.Unavailable` (default 300, the CLI's 5 minutes); 0 raises at once.
        """
        if reconnect_for < 0:
            raise ValueError(f"reconnect_for must not be negative, got {reconnect_for}")
        return self._watch(sweep, reconnect_for)

    def _watch(self, sweep: str, reconnect_for: float) -> Iterator[Change]:
        request = service_pb2.WatchSweepRequest(sweep_id=sweep)
        began = False  # a Change came: a lost connection is worth reconnecting
        lost_at: float | None = None  # time.monotonic() when the connection was lost
        backoff = _FIRST_BACKOFF_S
        version = None  # of the last Change
        whole = None  # the sweep of the last Change with delta False
        while True:
            call = self._stub.WatchSweep(request, metadata=self._metadata)
            try:
                for snapshot in call:
                    if lost_at is not None:  # back: the next loss is a new one
                        lost_at, backoff = None, _FIRST_BACKOFF_S
                    began, version = True, snapshot.version
                    if not snapshot.delta:
                        whole = snapshot.sweep
                    yield change_of(snapshot, whole)
                return
            except grpc.RpcError as error:
                failed = errors.from_rpc_error(error)
                if not isinstance(failed, errors.Unavailable) or not began or reconnect_for == 0:
                    failed = self._error("WatchSweep", error)
                    if isinstance(failed, errors.NotFound) and not began:
                        failed = self._not_a_sweep(sweep, failed)
                    raise failed from None
                if lost_at is None:
                    lost_at = time.monotonic()
                    # The version keeps each loss's text apart, so that the warnings module's
                    # "once per text and place" still shows every loss. stacklevel 2: the
                    # caller's loop, the frame that resumed this generator.
                    warnings.warn(
                        f"ablate: watching {sweep}: lost the coordinator at {self.address} "
                        f"after version {version} ({failed.message}); reconnecting for up to "
                        f"{_duration(reconnect_for)}", stacklevel=2)
                elif time.monotonic() - lost_at >= reconnect_for:
                    raise errors.Unavailable(failed.code, (
                        f"{failed.message} (watching {sweep}: no answer from {self.address} "
                        f"for {_duration(reconnect_for)})")) from None
            finally:
                call.cancel()
            time.sleep(max(0.0, min(backoff, lost_at + reconnect_for - time.monotonic())))
            backoff = min(backoff * 2, _LAST_BACKOFF_S)


def _warn_of_missing_series(sweep: str, names: Sequence[str], logged: set[str]) -> None:
    """Warns (UserWarning) of each asked series that no job has a point of, naming those
    the jobs have (GetJob's logged_metric_names): a mistyped name would otherwise read as a
    frame without its rows. A warning, not an error, since a series may simply not have a
    point yet (eval/loss before the first evaluation)."""
    missing = [name for name in names if name not in logged]
    if missing:
        warnings.warn(
            f"no job of {sweep} has a point of {', '.join(map(repr, missing))}; "
            f"the series its jobs have: {', '.join(sorted(logged)) or 'none yet'}",
            stacklevel=3)


def _plain(value: Any, key: str) -> Any:
    """A dict's value as JSON holds it: numpy arrays and scalars (anything with tolist),
    ranges and tuples as lists and numbers. `key` is its path in the dict, for the error."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple, range)):
        return [_plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):
        return _plain(value.tolist(), key)
    raise ValueError(f"{key or 'the sweep'}: cannot send a value of type "
                     f"{type(value).__name__} (give numbers, strings, bools, and lists or dicts "
                     "of them)")


def _duration(seconds: float) -> str:
    """Seconds as the CLI writes a duration: "5m", "1m30s", "45s", "0.5s"."""
    minutes, rest = divmod(seconds, 60)
    if minutes and not rest:
        return f"{minutes:.0f}m"
    if minutes:
        return f"{minutes:.0f}m{rest:g}s"
    return f"{rest:g}s"
