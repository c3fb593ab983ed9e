// What a grid cell or a cost point can be colored or placed by, and where each value comes
// from: the job row itself (final eval loss) or the last point of one of its series, fetched
// once per job and kept (an ended job's series never change).
import { api } from './api';
import { bytes, loss, num, rate, signed } from './format';
import type { Job } from './gen/ablate/v1/job';

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

export const GRID_METRICS: MetricChoice[] = [
  { id: 'eval_loss', label: 'final eval loss', format: loss, lowerIsBetter: true,
    fromJob: (j) => j.finalEvalLoss ?? undefined },
  { id: 'baseline_diff', label: 'difference from baseline (eval loss)', format: signed,
    lowerIsBetter: true, difference: true, fromJob: (j) => j.finalEvalLoss ?? undefined },
  { id: 'tokens_per_sec', label: 'tokens/s', format: (v) => rate(v), lowerIsBetter: false,
    series: SERIES.tokensPerSec },
  { id: 'peak_memory', label: 'peak memory', format: bytes, lowerIsBetter: true,
    series: SERIES.peakMemory },
  { id: 'mfu', label: 'MFU', format: (v) => (v === undefined ? '–' : `${num(100 * v, 2)}%`),
    lowerIsBetter: false, series: SERIES.mfu },
];

// Last values of the series above, per job id.
const lastValues = new Map<string, Record<string, number>>();

export function lastValue(jobId: string, series: string): number | undefined {
  return lastValues.get(jobId)?.[series];
}

function settled(job: Job): boolean {
  return ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(job.state ?? '');
}

// Fetches the last values of every series above for `jobs` that have run (at most `limit`,
// eight requests at a time); calls `progress` after each batch.
export async function fetchLastValues(jobs: Job[], progress: () => void, limit = 2000):
  Promise<number> {
  const todo = jobs.filter((j) => Number(j.step ?? 0) > 0 || settled(j))
    .filter((j) => !(settled(j) && lastValues.has(j.spec?.jobId ?? ''))).slice(0, limit);
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
