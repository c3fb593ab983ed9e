// What a grid cell or a cost point can be colored or placed by, and where each value comes
// from: the job row itself (final eval loss; a running job's last one until it ends) or the last
// point of one of its series, fetched once per job and kept (an ended job's series never
// change). A series' last point is one logged sample, not a mean over the run, as `ablate
// results --metric` reads a series too: such a choice's label says "(last logged)".
import { api } from './api';
import { bytes, loss, num, rate, signed } from './format';
import type { Job } from './gen/ablate/v1/job';
import { jobEnded } from './sweep_model';

export const SERIES = {
  tokensPerSec: 'train/tokens_per_sec',
  peakMemory: 'memory/peak_allocated_bytes',
  mfu: 'train/mfu',
};

export interface MetricChoice {
  id: string;
  label: string;
  format: (v: number | undefined) => string;
  series?: string;          // last value of this series; else from the job row
  fromJob?: (job: Job) => number | undefined;
  difference?: boolean;     // shown as the difference from the baseline cell
  lowerIsBetter: boolean;
}

// A job's final eval loss, or while it runs its newest (the grid marks it as not final); a job
// that failed or was cancelled has none, as in `ablate results`.
function evalLoss(job: Job): number | undefined {
  return job.finalEvalLoss ?? (jobEnded(job.state) ? undefined : job.lastEvalLoss) ?? undefined;
}

export const GRID_METRICS: MetricChoice[] = [
  { id: 'eval_loss', label: 'final eval loss', format: loss, lowerIsBetter: true,
    fromJob: evalLoss },
  { id: 'baseline_diff', label: 'difference from baseline (eval loss)', format: signed,
    lowerIsBetter: true, difference: true, fromJob: evalLoss },
  { id: 'tokens_per_sec', label: 'tokens/s (last logged)', format: (v) => rate(v),
    lowerIsBetter: false, series: SERIES.tokensPerSec },
  { id: 'peak_memory', label: 'peak memory (last logged)', format: bytes, lowerIsBetter: true,
    series: SERIES.peakMemory },
  { id: 'mfu', label: 'MFU (last logged)', format: (v) => (v === undefined ? '–' :
    `${num(100 * v, 2)}%`), lowerIsBetter: false, series: SERIES.mfu },
];

// Last values of the series above, per job id.
const lastValues = new Map<string, Record<string, number>>();

export function lastValue(jobId: string, series: string): number | undefined {
  return lastValues.get(jobId)?.[series];
}

// Fetches the last values of every series above for `jobs` that have run (at most `limit`,
// eight requests at a time); calls `progress` after each batch.
export async function fetchLastValues(jobs: Job[], progress: () => void, limit = 2000):
  Promise<number> {
  const todo = jobs.filter((j) => Number(j.step ?? 0) > 0 || jobEnded(j.state))
    .filter((j) => !(jobEnded(j.state) && lastValues.has(j.spec?.jobId ?? ''))).slice(0, limit);
  for (let i = 0; i < todo.length; i += 8) {
    await Promise.all(todo.slice(i, i + 8).map(async (job) => {
      const id = job.spec?.jobId ?? '';
      const { metrics = [] } = await api.job(id, Object.values(SERIES), 2);
      const values: Record<string, number> = {};
      for (const m of metrics) {
        const v = m.values?.[m.values.length - 1];
        if (m.name && v !== undefined) values[m.name] = v;
      }
      lastValues.set(id, values);
    }));
    progress();
  }
  return todo.length;
}

export function valueOf(choice: MetricChoice, job: Job): number | undefined {
  if (choice.fromJob) return choice.fromJob(job);
  return choice.series ? lastValue(job.spec?.jobId ?? '', choice.series) : undefined;
}
