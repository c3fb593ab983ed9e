// A job's attempts as a reader counts them and as the coordinator names them, and what the last
// one says of a retry. Each job numbers its own attempts from 1 (its attempt 2); the
// coordinator's attempt id counts every job's together, and is the name the worker's folder
// (attempt-19), the logs (attempt_id=19) and the JSON API (attemptId) use, so the views show
// both.
import type { Attempt, Job } from './gen/ablate/v1/job';

// Attempt ids are uint64s in decimal strings: the shorter is the smaller.
function byId(a: Attempt, b: Attempt): number {
  const [x, y] = [String(a.id ?? ''), String(b.id ?? '')];
  return x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
}

// Each attempt's ordinal within its job (1 for the job's first), by attempt id: the attempts
// may be of one job (its page) or of many (the workers' timeline).
export function attemptOrdinals(attempts: Attempt[]): Map<string, number> {
  const made = new Map<string, number>();  // attempts counted so far, by job id
  return new Map([...attempts].sort(byId).map((a) => {
    const n = (made.get(a.jobId ?? '') ?? 0) + 1;
    made.set(a.jobId ?? '', n);
    return [String(a.id ?? ''), n];
  }));
}

// "attempt 2 (id 19)": the job's count, and the id its worker's folder and logs go by.
export function attemptName(ordinal: number | undefined, id: string): string {
  return ordinal ? `attempt ${ordinal} (id ${id})` : `attempt id ${id}`;
}

// "1/3 (+1 not counted)": the job's attempts counted against its max_attempts, of those, then
// its others (Job.uncountedAttempts: those its worker interrupted, and those before a retry,
// which grants the budget afresh), as `ablate status` counts them.
export function attemptsText(job: Job): string {
  const uncounted = job.uncountedAttempts ?? 0;
  return `${(job.attempts ?? 0) - uncounted}/${job.maxAttempts ?? 0}` +
    (uncounted ? ` (+${uncounted} not counted)` : '');
}

// How a worker's reason for refusing an attempt opens (worker/session_assign.cc).
const NOT_STARTED = 'not started: ';

// Why the attempt never started its trainer (Attempt.neverStarted: its worker refused it, so
// it wrote no log), in its worker's words less NOT_STARTED; undefined where it started one.
export function whyNotStarted(attempt: Attempt | undefined): string | undefined {
  if (!attempt?.neverStarted) return undefined;
  const reason = attempt.exit?.reason ?? '';
  return reason.startsWith(NOT_STARTED) ? reason.slice(NOT_STARTED.length) : reason;
}

// The one exit code after which the coordinator retries a failed attempt (common/trainer_exit.h's
// kTrainerFailed: a lost device, an internal error); it retries one killed by a signal too.
const RETRIED_EXIT_CODE = 1;

// Why the job's newest attempt failed in a way another attempt meets again, or undefined where
// it did not: the coordinator failed the job at once (attempt_policy.h) since the trainer exited
// with any other code (3: a permanent failure such as a missing dataset or a diverged run; 2:
// bad usage), or its worker refused to start it (a path outside its --data-root), reporting
// no code.
export function permanentFailure(attempts: Attempt[]): string | undefined {
  const last = [...attempts].sort(byId).pop();
  const exit = last?.exit ?? {};
  if (last?.state !== 'ATTEMPT_STATE_FAILED' || exit.signal ||
    (exit.exitCode ?? 0) === RETRIED_EXIT_CODE) return undefined;
  return exit.reason || `exit code ${exit.exitCode ?? 0}`;
}
