// What the Job view says of a job beyond its row: which eval loss it has, and its settings as it
// ran them, named as sweep files name them, with the zeros that stand for a default or for
// something else named so.
import { loss } from './format';
import type { TrainConfig } from './gen/ablate/v1/config';
import type { Job } from './gen/ablate/v1/job';

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

// What a zero (or empty string) of a TrainConfig field means, as config.proto says: a default,
// given in its brackets there, or what the field does at zero. The keys are the proto's names.
const ZERO_MEANS: Record<string, string> = {
  eval_every: '0 (evaluates only at the end)',
  checkpoint_every: '0 (one every 30 minutes of training, and the final step)',
  grad_clip: '0 (no clipping)',
  gpus: '0 (runs on CPU)',
  // The worker fills it in before the trainer starts (worker/trainer_process.h).
  cpu_threads: "default (its worker's --cpu-threads-per-slot per slot, 1 unless set)",
  micro_batch_size: 'default (the whole batch)',
  loss_chunk_tokens: 'default (4096)',
  lr_schedule: 'default (cosine)',
  decay_fraction: 'default (0.2)',
  nonfinite: 'default (fail)',
  keep_checkpoints: 'default (2)',
  divergence_factor: 'default (off)',
  divergence_evals: 'default (3)',
  cpu_ranks: 'default (one rank)',
  optimizer_sharding: 'default (auto)',
  grad_bucket_mb: 'default (100)',
};

// The JSON API's names are camelCase; sweep files and config_json use the proto's (snake_case).
// Map keys (optimizer_args.beta2) are the user's own and lowercase already.
const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function ranWith(configJson: string | undefined): Map<string, string> {
  if (!configJson) return new Map();
  try {
    return new Map(flatten(JSON.parse(configJson)));
  } catch {
    return new Map();
  }
}

// The job's settings as [field, value] rows, by the proto's names: what it ran with where its
// trainer reported the config it resolved (`configJson`, the provenance's), else the spec's, a
// zero that stands for something saying what either way (the JSON leaves zeros out, and a
// field the spec lacks is zero too).
export function settingsRows(config: TrainConfig, configJson?: string): [string, string][] {
  const ran = ranWith(configJson);
  const spec = new Map(flatten(config).map(([key, value]) => [snake(key), value]));
  for (const key of Object.keys(ZERO_MEANS)) if (!spec.has(key)) spec.set(key, '0');
  return [...spec].map(([key, value]) => {
    const zero = key in ZERO_MEANS && value === '0';
    const actual = ran.get(key);
    if (actual !== undefined) return [key, zero ? `${actual} (default)` : actual];
    return [key, zero ? ZERO_MEANS[key] : value];
  });
}
