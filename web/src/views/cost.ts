// Cost: each cell's final eval loss (mean over repeats) against what it cost, in device time
// (the attempts' wall time times the job's GPUs, a CPU job counting as one device: GPU-hours
// where every job has a GPU, device-hours otherwise) and in peak memory; the Pareto front (no
// other cell both cheaper and better) is joined by a line. Scatter plots are SVG, so they
// export as SVG.
import { api } from '../api';
import type { SweepSession } from '../app';
import { download } from '../csv';
import { h } from '../dom';
import { bytes, decimalsFor, escapeHtml, loss, noValues, plural, seconds } from '../format';
import type { Job } from '../gen/ablate/v1/job';
import type { GetJobResponse } from '../gen/ablate/v1/sweep_service';
import { cellsOf, type CellStats } from '../grid_model';
import { SERIES } from '../metrics';
import { OKABE_ITO } from '../palette';
import { paretoFront, type Point } from '../pareto';

const MAX_JOBS = 1000;

// The job's attempts' wall time in hours, times its devices (its GPUs, or one for a CPU job).
export function deviceHours(detail: GetJobResponse): number {
  const gpus = Math.max(1, detail.job?.spec?.config?.gpus ?? 0);
  let total = 0;
  for (const a of detail.attempts ?? []) {
    const start = seconds(a.startedAt);
    const end = seconds(a.endedAt);
    if (start !== undefined && end !== undefined && end > start) total += end - start;
  }
  return (total / 3600) * gpus;
}

// Hours per unit, the unit's name and its short form.
const TIME_UNITS: [number, string, string][] = [[1, 'hours', 'h'], [1 / 60, 'minutes', 'min'],
  [1 / 3600, 'seconds', 's']];

export interface CostAxis {
  label: string;                      // "GPU-hours", "device-seconds"
  format: (hours: number) => string;  // for ticks and tooltips alike: "10.4 device-s"
}

// The time axis for costs of `hours`: "GPU" where every job has one, else "device", in the
// largest unit the costliest point reaches (a small sweep's 0.0029 device-hours read 10.4
// device-s), with the decimals that tell the axis' ticks, half its range apart, from each other.
export function costAxis(hours: number[], jobs: Job[]): CostAxis {
  const device = jobs.every((j) => (j.spec?.config?.gpus ?? 0) > 0) ? 'GPU' : 'device';
  const hi = Math.max(...hours);
  const lo = Math.min(...hours);
  const [per, name, short] = hours.length ?
    TIME_UNITS.find(([p]) => hi >= p) ?? TIME_UNITS[2] : TIME_UNITS[0];
  // One value, or every point's the same: three significant digits of it.
  const decimals = decimalsFor((hi > lo ? (hi - lo) / 2 : hi / 100) / per);
  return { label: `${device}-${name}`,
    format: (v) => `${(v / per).toFixed(decimals)} ${device}-${short}` };
}

function cellMean(cell: CellStats, perJob: Map<string, number>): number | undefined {
  const xs = cell.jobs.map((j) => perJob.get(j.spec?.jobId ?? ''))
    .filter((v): v is number => v !== undefined && Number.isFinite(v));
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined;
}

// An SVG scatter of `points`, the front joined and its points filled.
// `ended`: the sweep has, so a missing value will never come.
export function scatterSvg(points: Point[], xLabel: string, format: (v: number) => string,
  id: string, ended: boolean): string {
  const W = 520, H = 340, L = 64, B = 44, T = 16, R = 48;
  if (!points.length) return `<p class="empty">${escapeHtml(noValues(xLabel, ended))}.</p>`;
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R);
  const sy = (y: number) => H - B - ((y - y0) / (y1 - y0 || 1)) * (H - B - T);
  const front = paretoFront(points);
  const onFront = new Set(front.map((p) => p.id));
  const dots = points.map((p) => `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}"` +
    ` r="5" data-cell="${escapeHtml(p.id)}" class="${onFront.has(p.id) ? 'front' : 'dot'}"` +
    ` fill="${onFront.has(p.id) ? OKABE_ITO[5] : 'none'}" stroke="${onFront.has(p.id) ?
      OKABE_ITO[5] : OKABE_ITO[0]}" stroke-width="1.5"><title>${escapeHtml(p.id)}: loss ` +
    `${loss(p.y)}, ${escapeHtml(format(p.x))}</title></circle>`).join('');
  const line = front.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
  // Both ends and the middle; one tick where every point has the same value.
  const spots = (lo: number, hi: number) => (hi > lo ? [lo, (lo + hi) / 2, hi] : [lo]);
  const ticks = spots(x0, x1).map((x) => `<text x="${sx(x)}" y="${H - B + 16}"` +
    ` text-anchor="middle">${escapeHtml(format(x))}</text>`).join('') +
    spots(y0, y1).map((y) => `<text x="${L - 6}" y="${sy(y) + 4}" text-anchor="end">` +
    `${loss(y)}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" id="${id}" class="scatter" viewBox="0 0 ${W} ${H}"` +
    ` width="${W}" height="${H}" role="img" aria-label="final eval loss against ${escapeHtml(xLabel)}">` +
    `<style>text{font:11px sans-serif;fill:currentColor}</style>` +
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="currentColor"/>` +
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="currentColor"/>${ticks}` +
    `<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">${escapeHtml(xLabel)}</text>` +
    `<text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})"` +
    ` text-anchor="middle">final eval loss</text>` +
    `<polyline points="${line}" fill="none" stroke="${OKABE_ITO[5]}" stroke-width="2"` +
    ` stroke-dasharray="5 3" class="pareto"/>${dots}</svg>`;
}

export function costView(session: SweepSession): { el: HTMLElement; dispose: () => void } {
  const status = h('p', { className: 'muted', id: 'cost-status' }, 'loading attempts…');
  const plots = h('div', { className: 'cost-plots' });
  const el = h('section', { className: 'view', 'data-view': 'cost' }, status, plots);
  const hours = new Map<string, number>();
  const memory = new Map<string, number>();
  let loaded = false;

  const render = () => {
    const cells = cellsOf(session.model.sweep, session.model.jobs, (j) => j.finalEvalLoss);
    const label = (c: CellStats) => Object.values(c.values).join('/');
    const pointsOf = (perJob: Map<string, number>) => cells.flatMap((c) => {
      const x = cellMean(c, perJob);
      return c.mean !== undefined && x !== undefined ? [{ x, y: c.mean, id: label(c) }] : [];
    });
    const timePoints = pointsOf(hours);
    const time = costAxis(timePoints.map((p) => p.x), finished());
    plots.innerHTML = '';
    for (const [title, id, points, format] of [
      [time.label, 'cost-gpu-hours', timePoints, time.format],
      ['peak memory', 'cost-memory', pointsOf(memory), bytes],
    ] as const) {
      const fig = h('figure', { className: 'panel' }, h('figcaption', {}, `loss vs ${title}`));
      fig.insertAdjacentHTML('beforeend', scatterSvg(points, title, format, id,
        session.model.ended()));
      fig.append(h('button', { type: 'button', onclick: () => {
        const svg = fig.querySelector('svg');
        if (svg) download(`${session.sweepId}-${id}.svg`, new Blob([svg.outerHTML],
          { type: 'image/svg+xml' }));
      } }, 'Export SVG'));
      plots.append(fig);
    }
  };
  // The jobs with a final eval loss, those that succeeded, of the spec's cells: the jobs an
  // update dropped are in no cell (grid_model.ts).
  const finished = () => session.model.jobs.filter((j) => j.finalEvalLoss !== undefined &&
    !j.dropped);
  const load = async () => {
    const succeeded = finished().length;
    const dropped = session.model.jobs.filter((j) => j.dropped).length;
    const jobs = finished().slice(0, MAX_JOBS);
    for (let i = 0; i < jobs.length; i += 8) {
      await Promise.all(jobs.slice(i, i + 8).map(async (job) => {
        const detail = await api.job(job.spec?.jobId ?? '', [SERIES.peakMemory], 2);
        const id = job.spec?.jobId ?? '';
        hours.set(id, deviceHours(detail));
        const mem = detail.metrics?.find((m) => m.name === SERIES.peakMemory)?.values;
        if (mem?.length) memory.set(id, mem[mem.length - 1]);
      }));
    }
    status.textContent = 'Each point is a cell: the mean over its jobs that succeeded ' +
      `(${succeeded} of ${plural(session.model.jobs.length - dropped, 'job')}` +
      `${succeeded > MAX_JOBS ? `; the first ${MAX_JOBS} plotted` : ''}), as a failed or ` +
      'cancelled job has no final eval loss' +
      `${dropped ? `; ${plural(dropped, 'job')} an update dropped left out` : ''}. The dashed ` +
      'line is the Pareto front (no other cell is both cheaper and better).';
    render();
  };
  const unlisten = session.listen(() => {
    if (!loaded) {
      loaded = true;
      void load();
    }
  });
  return { el, dispose: unlisten };
}
