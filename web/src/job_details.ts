// What the Job view says of a job beyond its row: which eval loss it has, its attempts numbered
// as the job counts them (1, 2, ...; the coordinator's attempt ids count every job's attempts
// together), and its settings as it ran them, with the zeros that stand for a default named so.
import { loss } from './format';
import type { TrainConfig } from './gen/ablate/v1/config';
import type { Attempt, Job } from './gen/ablate/v1/job';

// The job's eval loss as its header names it: the final one once it succeeded, else the newest
// its trainer reported (while it runs, or where it stopped), called the last so.
export function evalLossText(job: Job): string {
  if (job.finalEvalLoss !== undefined) return `final eval loss ${loss(job.finalEvalLoss)}`;
  if (job.lastEvalLoss !== undefined) return `last eval loss ${loss(job.lastEvalLoss)}`;
  return 'eval loss –';
}

// A message as [field, value] rows, nested fields dotted.
export function flatten(value: unknown, prefix = ''): [string, string][] {
  if (value === null || typeof value !== 'object') return [[prefix, String(value)]];
  if (Array.isArray(value)) return [[prefix, value.map((v) => JSON.stringify(v)).join(', ')]];
  return Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && v !== '' && !(Array.isArray(v) && !v.length))
    .flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
}

// Attempt ids are uint64s in decimal strings: the shorter is the smaller.
function byId(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

// Each of a job's attempts' ordinal (1 for its first), by attempt id.
export function attemptOrdinals(attempts: Attempt[]): Map<string, number> {
  const ids = attempts.map((a) => String(a.id ?? '')).sort(byId);
  return new Map(ids.map((id, i) => [id, i + 1]));
}

// TrainConfig fields whose zero (or empty string) means a default, and that default, as
// config.proto's brackets give it.
const ZERO_MEANS: Record<string, string> = {
  cpuThreads: "default (PyTorch's)",
  microBatchSize: 'default (the whole batch)',
  lossChunkTokens: 'default (4096)',
  lrSchedule: 'default (cosine)',
  decayFraction: 'default (0.2)',
  nonfinite: 'default (fail)',
  keepCheckpoints: 'default (2)',
  divergenceFactor: 'default (off)',
  divergenceEvals: 'default (3)',
  cpuRanks: 'default (one rank)',
  optimizerSharding: 'default (auto)',
  gradBucketMb: 'default (100)',
};

// config_json's fields are the proto's (snake_case); the JSON API's are camelCase.
const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function ranWith(configJson: string | undefined): Map<string, string> {
  if (!configJson) return new Map();
  try {
    return new Map(flatten(JSON.parse(configJson)));
  } catch {
    return new Map();
  }
}

// The job's settings as [field, value] rows: what it ran with where its trainer reported the
// config it resolved (`configJson`, the provenance's), else the spec's, a zero that stands for
// a default saying so either way.
export function settingsRows(config: TrainConfig, configJson?: string): [string, string][] {
  const ran = ranWith(configJson);
  const spec: Record<string, unknown> = { ...config };
  for (const key of Object.keys(ZERO_MEANS)) spec[key] ||= 0;
  return flatten(spec).map(([key, value]) => {
    const byDefault = key in ZERO_MEANS && value === '0';
    const actual = ran.get(snake(key));
    if (actual !== undefined) return [key, byDefault ? `${actual} (default)` : actual];
    return [key, byDefault ? ZERO_MEANS[key] : value];
  });
}
