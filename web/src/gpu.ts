// The GPU health a worker samples for each job it runs (worker/gpu_monitor.h), as series named
// gpu/<r>/<quantity>, r being the job's r-th GPU: its latest values per GPU and its curves.
import type { Line } from './chart';
import { bytes, num } from './format';
import type { MetricSeries } from './gen/ablate/v1/metrics';

export const GPU_QUANTITIES = {
  utilization_percent: { label: 'utilization', unit: '%',
    format: (v: number | undefined) => (v === undefined ? '–' : `${num(v, 2)}%`) },
  memory_used_bytes: { label: 'memory used', unit: 'bytes', format: bytes },
  temperature_celsius: { label: 'temperature', unit: '°C',
    format: (v: number | undefined) => (v === undefined ? '–' : `${num(v, 2)} °C`) },
};
export type GpuQuantity = keyof typeof GPU_QUANTITIES;
const QUANTITIES = Object.keys(GPU_QUANTITIES) as GpuQuantity[];

// The series names of a job on `gpus` GPUs.
export function gpuSeriesNames(gpus: number): string[] {
  const names: string[] = [];
  for (let r = 0; r < gpus; r++) for (const q of QUANTITIES) names.push(`gpu/${r}/${q}`);
  return names;
}

function parse(name: string | undefined): { rank: number; quantity: GpuQuantity } | null {
  const match = (name ?? '').match(/^gpu\/(\d+)\/(\w+)$/);
  if (!match || !(QUANTITIES as string[]).includes(match[2])) return null;
  return { rank: Number(match[1]), quantity: match[2] as GpuQuantity };
}

export interface GpuRow {
  rank: number;
  latest: Partial<Record<GpuQuantity, number>>;
}

// Each GPU that reported, in rank order, with the last value of each quantity.
export function gpuRows(metrics: MetricSeries[]): GpuRow[] {
  const rows = new Map<number, GpuRow>();
  for (const m of metrics) {
    const id = parse(m.name);
    const values = m.values ?? [];
    if (!id || !values.length) continue;
    const row = rows.get(id.rank) ?? { rank: id.rank, latest: {} };
    row.latest[id.quantity] = values[values.length - 1];
    rows.set(id.rank, row);
  }
  return [...rows.values()].sort((a, b) => a.rank - b.rank);
}

// One line per GPU of `quantity` against wall time.
export function gpuLines(metrics: MetricSeries[], quantity: GpuQuantity): Line[] {
  return metrics.map((m) => ({ m, id: parse(m.name) }))
    .filter(({ id }) => id?.quantity === quantity)
    .sort((a, b) => (a.id?.rank ?? 0) - (b.id?.rank ?? 0))
    .map(({ m, id }) => ({ label: `GPU ${id?.rank}`, x: m.wallTimes ?? [], y: m.values ?? [] }));
}
