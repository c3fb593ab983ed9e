// One sweep as the page knows it: the whole sweep from the event stream's first message, then
// each delta applied in place (the sweep's counts and state, the jobs whose row changed, the
// metric points a commit appended). Pure: the stream and the views live elsewhere.
import type { Job } from './gen/ablate/v1/job';
import type { MetricPoint } from './gen/ablate/v1/metrics';
import type { Sweep } from './gen/ablate/v1/sweep';
import type { SweepSnapshot } from './gen/ablate/v1/sweep_service';

// Whether a job in `state` has ended: its row and series change no more (unless retried).
export function jobEnded(state: string | undefined): boolean {
  return state === 'JOB_STATE_SUCCEEDED' || state === 'JOB_STATE_FAILED' ||
    state === 'JOB_STATE_CANCELLED';
}

export class SweepModel {
  sweep: Sweep | null = null;
  jobs: Job[] = [];
  private index = new Map<string, number>();
  // Points that arrived live, per job id, in arrival order.
  readonly livePoints = new Map<string, MetricPoint[]>();

  // Replaces everything with `sweep` and `jobs` (a fresh snapshot or a poll).
  reset(sweep: Sweep, jobs: Job[]): void {
    this.sweep = sweep;
    this.jobs = jobs;
    this.index = new Map(jobs.map((j, i) => [j.spec?.jobId ?? '', i]));
  }

  // Applies one message of the stream; returns the ids of jobs that got new metric points.
  apply(snapshot: SweepSnapshot): Set<string> {
    const grown = new Set<string>();
    if (!snapshot.delta) {
      this.reset(snapshot.sweep ?? {}, snapshot.jobs ?? []);
    } else if (this.sweep) {
      // A delta leaves out the spec, which never changes.
      this.sweep = { ...this.sweep, state: snapshot.sweep?.state, counts: snapshot.sweep?.counts };
      for (const job of snapshot.jobs ?? []) {
        const id = job.spec?.jobId ?? '';
        const i = this.index.get(id);
        if (i === undefined) {
          this.index.set(id, this.jobs.length);
          this.jobs.push(job);
        } else {
          // Keep the spec the snapshot carried when a delta's row leaves it thin.
          this.jobs[i] = { ...job, spec: { ...this.jobs[i].spec, ...job.spec } };
        }
      }
    }
    for (const m of snapshot.metrics ?? []) {
      if (!m.jobId || !m.points?.length) continue;
      const list = this.livePoints.get(m.jobId) ?? [];
      list.push(...m.points);
      this.livePoints.set(m.jobId, list);
      grown.add(m.jobId);
    }
    return grown;
  }

  job(id: string): Job | undefined {
    const i = this.index.get(id);
    return i === undefined ? undefined : this.jobs[i];
  }

  ended(): boolean {
    const s = this.sweep?.state;
    return s === 'SWEEP_STATE_COMPLETED' || s === 'SWEEP_STATE_FAILED' ||
      s === 'SWEEP_STATE_CANCELLED';
  }
}
