// The points of one metric of one job, as the charts draw them: the series the API returned
// (thinned by the coordinator), then the points that arrived live after its last step, on the
// chosen x axis: step, tokens, training FLOPs (the coordinator's FLOPs per token, from the
// model math, times tokens) or wall time.
import type { Job } from './gen/ablate/v1/job';
import type { MetricPoint, MetricSeries } from './gen/ablate/v1/metrics';

export type XAxis = 'step' | 'tokens' | 'flops' | 'wall';

export const CURVE_METRICS = ['train/loss', 'eval/loss', 'train/lr', 'train/grad_norm',
  'train/tokens_per_sec'];

export const X_LABELS: Record<XAxis, string> = { step: 'step', tokens: 'tokens',
  flops: 'training FLOPs', wall: 'wall time' };

// Tokens one optimizer step trains: batch_size sequences of context_length tokens.
export function tokensPerStep(job: Job | undefined): number {
  const c = job?.spec?.config;
  return (c?.batchSize ?? 0) * (c?.contextLength ?? 0);
}

// Model FLOPs (forward and backward) one optimizer step trains; 0 when the coordinator does
// not know the job's FLOPs per token.
export function flopsPerStep(job: Job | undefined): number {
  return tokensPerStep(job) * (job?.spec?.trainFlopsPerToken ?? 0);
}

export function curvePoints(series: MetricSeries | undefined, live: MetricPoint[] | undefined,
  metric: string): { steps: number[]; values: number[]; walls: number[] } {
  const steps = (series?.steps ?? []).map(Number);
  const values = [...(series?.values ?? [])];
  const walls = [...(series?.wallTimes ?? [])];
  const lastStep = steps.length ? steps[steps.length - 1] : -Infinity;
  const extra = (live ?? []).filter((p) => p.name === metric && Number(p.step) > lastStep)
    .sort((a, b) => Number(a.step) - Number(b.step));
  for (const p of extra) {
    if (steps.length && Number(p.step) === steps[steps.length - 1]) continue;
    steps.push(Number(p.step));
    values.push(p.value ?? NaN);
    walls.push(p.wallTime ?? NaN);
  }
  return { steps, values, walls };
}

// The x of each point on `axis`; null where the job cannot be placed on it (FLOPs unknown).
export function xValues(points: { steps: number[]; walls: number[] }, axis: XAxis,
  job: Job | undefined): number[] | null {
  if (axis === 'wall') return points.walls;
  if (axis === 'flops') {
    const per = flopsPerStep(job);
    return per > 0 ? points.steps.map((s) => s * per) : null;
  }
  if (axis === 'tokens') {
    const per = tokensPerStep(job) || 1;
    return points.steps.map((s) => s * per);
  }
  return points.steps;
}
