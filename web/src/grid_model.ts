// The sweep as a matrix: jobs grouped into cells (one per combination of the grid's dimensions
// other than the repeat's seed), cells laid out by a row and a column dimension, one panel per
// combination of the others. Jobs an update of the sweep dropped (Job.dropped: no cells of its
// spec now) are in no value or count, as `ablate results` leaves them out; a cell lists those
// of its values apart. Pure and linear in the number of jobs, so a 10,000-job sweep pivots in
// milliseconds.
import type { Job } from './gen/ablate/v1/job';
import type { Sweep } from './gen/ablate/v1/sweep';
import { estimate } from './stats';
import { jobEnded } from './sweep_model';

export const REPEAT_DIMENSION = 'seed';

export interface CellStats {
  key: string;                 // the cell's values on every non-repeat dimension, joined
  values: Record<string, string>;
  jobs: Job[];                 // its repeats, in expansion order
  samples: Map<string, number>;  // seed ('' without repeats) -> metric value
  mean?: number;
  std?: number;                // sample standard deviation over repeats; unset with one value
  half?: number;               // half the 95% interval of the mean (stats.ts); unset with one
  provisional: Set<string>;    // seeds whose value is a running job's latest, not its final
  states: Record<string, number>;  // JobState -> count
  dropped: Job[];              // jobs of its values an update dropped: listed, never counted
}

export interface Panel {
  label: string;  // "c=c0, d=d1", or "" when there are no panel dimensions
  rows: string[];
  cols: string[];
  cells: Map<string, CellStats>;  // `${row}\u0000${col}` -> stats
}

export type Metric = (job: Job) => number | undefined;

export function dimensionsOf(sweep: Sweep | null): { name: string; values: string[] }[] {
  return (sweep?.spec?.grid ?? []).map((d) => ({ name: d.name ?? '', values: d.values ?? [] }));
}

// The grid's dimensions of more than one value: those that tell its jobs apart, with the seed
// that repeats add to every cell (the spec's grid does not list it).
export function varyingDimensions(sweep: Sweep | null): Set<string> {
  const varying = new Set(dimensionsOf(sweep).filter((d) => d.values.length > 1)
    .map((d) => d.name));
  if ((sweep?.spec?.repeats ?? 0) > 1) varying.add(REPEAT_DIMENSION);
  return varying;
}

// The grid's dimensions a cell is keyed by: all but the repeat's seed.
export function cellDimensions(sweep: Sweep | null): string[] {
  return dimensionsOf(sweep).map((d) => d.name).filter((n) => n !== REPEAT_DIMENSION);
}

function cellValues(job: Job): Record<string, string> {
  const values: Record<string, string> = {};
  for (const c of job.spec?.cell ?? []) values[c.dimension ?? ''] = c.value ?? '';
  return values;
}

// Without repeats a cell holds one job, paired with the baseline's one job.
function repeatOf(values: Record<string, string>): string {
  return values[REPEAT_DIMENSION] ?? '';
}

function finish(cell: CellStats): void {
  const xs = [...cell.samples.values()].filter(Number.isFinite);
  if (!xs.length) return;
  ({ mean: cell.mean, std: cell.std, half: cell.half } = estimate(xs));
}

// Every cell of the sweep, in expansion order, with `metric` per repeat. A cell is made by the
// jobs of the spec; those an update dropped only join the cell of their values, if it has one.
export function cellsOf(sweep: Sweep | null, jobs: Job[], metric: Metric): CellStats[] {
  const dims = cellDimensions(sweep);
  const byKey = new Map<string, CellStats>();
  const dropped: [string, Job][] = [];
  for (const job of jobs) {
    const values = cellValues(job);
    let key = '';
    for (let i = 0; i < dims.length; i++) key += (i ? '\u0000' : '') + (values[dims[i]] ?? '');
    if (job.dropped) {
      dropped.push([key, job]);
      continue;
    }
    let cell = byKey.get(key);
    if (!cell) {
      const own: Record<string, string> = {};
      for (const d of dims) own[d] = values[d] ?? '';
      cell = { key, values: own, jobs: [], samples: new Map(), provisional: new Set(),
        states: {}, dropped: [] };
      byKey.set(key, cell);
    }
    cell.jobs.push(job);
    const state = job.state ?? 'JOB_STATE_UNSPECIFIED';
    cell.states[state] = (cell.states[state] ?? 0) + 1;
    const v = metric(job);
    if (v === undefined || !Number.isFinite(v)) continue;
    cell.samples.set(repeatOf(values), v);
    if (!jobEnded(state)) cell.provisional.add(repeatOf(values));
  }
  for (const [key, job] of dropped) byKey.get(key)?.dropped.push(job);
  const cells = [...byKey.values()];
  cells.forEach(finish);
  return cells;
}

// The key of the baseline cell the spec names, or null where it names none (then there is no
// difference to show, as `ablate results` shows none).
export function baselineKey(sweep: Sweep | null): string | null {
  const named = sweep?.spec?.baseline ?? {};
  if (!Object.keys(named).length) return null;
  return dimensionsOf(sweep).filter((d) => d.name !== REPEAT_DIMENSION)
    .map((d) => named[d.name] ?? d.values[0] ?? '').join('\u0000');
}

// Replaces each cell's samples by its difference from the baseline cell, paired by seed (what
// a seed shares, initialisation and data order, cancels); seeds the baseline lacks drop out.
// A difference with a running job's value on either side is not final either.
export function differencesFrom(cells: CellStats[], baseline: string): CellStats[] {
  const base = cells.find((c) => c.key === baseline);
  return cells.map((c) => {
    const samples = new Map<string, number>();
    const provisional = new Set<string>();
    if (base) {
      for (const [seed, v] of c.samples) {
        const b = base.samples.get(seed);
        if (b === undefined) continue;
        samples.set(seed, v - b);
        if (c.provisional.has(seed) || base.provisional.has(seed)) provisional.add(seed);
      }
    }
    const out: CellStats = { ...c, samples, provisional, mean: undefined, std: undefined,
      half: undefined };
    finish(out);
    return out;
  });
}

// Lays `cells` out by `rowDim` x `colDim`, one panel per combination of the other dimensions,
// in the grid's order of values.
export function pivot(sweep: Sweep | null, cells: CellStats[], rowDim: string,
  colDim: string): Panel[] {
  const dims = dimensionsOf(sweep).filter((d) => d.name !== REPEAT_DIMENSION);
  const valuesOf = (name: string) => dims.find((d) => d.name === name)?.values ?? [''];
  const panelDims = dims.map((d) => d.name).filter((n) => n !== rowDim && n !== colDim);
  const panels = new Map<string, Panel>();
  for (const cell of cells) {
    const label = panelDims.map((d) => `${d}=${cell.values[d]}`).join(', ');
    let panel = panels.get(label);
    if (!panel) {
      panel = { label, rows: rowDim ? valuesOf(rowDim) : [''],
        cols: colDim ? valuesOf(colDim) : [''], cells: new Map() };
      panels.set(label, panel);
    }
    const r = rowDim ? cell.values[rowDim] : '';
    const c = colDim ? cell.values[colDim] : '';
    panel.cells.set(`${r}\u0000${c}`, cell);
  }
  return [...panels.values()];
}

// The finite range of the cells' means, for the colour scale.
export function extent(cells: CellStats[]): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const c of cells) {
    if (c.mean === undefined) continue;
    lo = Math.min(lo, c.mean);
    hi = Math.max(hi, c.mean);
  }
  return lo <= hi ? [lo, hi] : null;
}
