// Grid: the sweep as heatmaps. Rows and columns are dimensions the user picks; every other
// dimension (but the repeat's seed) makes one panel per combination. A cell shows the chosen
// metric's mean over its repeats, colored on viridis (or, for differences from the baseline, a
// blue-orange diverging scale centred on zero), half its 95% interval over them, and marks for
// jobs that are not done (a "~" where running jobs' latest values are in the mean); jobs an update
// dropped are in no value or count (grid_model.ts). Enter or a click opens the cell's job; arrow
// keys move between cells and panels.
import type { SweepSession } from '../app';
import { download, resultsCsv } from '../csv';
import { h, select } from '../dom';
import { escapeHtml, noValues, plural, stateName } from '../format';
import {
  baselineKey, cellDimensions, cellsOf, differencesFrom, extent, pivot, type CellStats,
} from '../grid_model';
import { GRID_METRICS, fetchLastValues, valueOf, type MetricChoice } from '../metrics';
import { diverging, textOn, viridis } from '../palette';
import { arrowTarget } from './grid_keys';

// By JobState: a cell's jobs that are not done, or did not succeed.
const MARKS: Record<string, string> = { JOB_STATE_FAILED: '✕', JOB_STATE_CANCELLED: '⊘',
  JOB_STATE_RUNNING: '▶', JOB_STATE_ASSIGNED: '▶', JOB_STATE_PENDING: '…' };

export interface GridChoice {
  rows: string;
  cols: string;  // '' for one column
  metric: string;
}

// Colours a scale is drawn with: cells take the nearest of these, so a grid's markup names a
// class per cell rather than parsing a style per cell (a 10,000-cell grid renders faster), and
// 65 steps (an odd count, so a diverging scale has its neutral middle) are finer than the eye
// tells apart.
const LEVELS = 65;

// The level of a cell whose value is `v` on the scale [lo, hi]: 0 is the scale's start.
function levelOf(choice: MetricChoice, v: number, lo: number, hi: number): number {
  let t: number;
  if (choice.difference) {
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    t = ((choice.lowerIsBetter ? v : -v) / m + 1) / 2;
  } else {
    const u = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    // The better end is always the bright (yellow) end of viridis.
    t = choice.lowerIsBetter ? 1 - u : u;
  }
  return Math.round(Math.min(1, Math.max(0, t)) * (LEVELS - 1));
}

const SCALES = {
  sequential: Array.from({ length: LEVELS }, (_, i) => viridis(i / (LEVELS - 1))),
  diverging: Array.from({ length: LEVELS }, (_, i) => diverging((2 * i) / (LEVELS - 1) - 1)),
};

function levelColor(choice: MetricChoice, level: number): string {
  return (choice.difference ? SCALES.diverging : SCALES.sequential)[level];
}

// Background colour of a cell whose value is `v` on the scale [lo, hi].
export function cellColor(choice: MetricChoice, v: number, lo: number, hi: number): string {
  return levelColor(choice, levelOf(choice, v, lo, hi));
}

// The stylesheet of the scale's classes (.heat-N), for one metric's colours.
export function scaleCss(choice: MetricChoice): string {
  const rules = [];
  for (let i = 0; i < LEVELS; i++) {
    const c = levelColor(choice, i);
    rules.push(`.heat td.heat-${i}{background:${c};color:${textOn(c)}}`);
  }
  return rules.join('\n');
}

// What a cell says in its tooltip and to a screen reader: its coordinates, the metric's mean
// and 95% interval, its jobs' states, whether running jobs' values are in it, and the jobs of
// its values an update dropped, which are in none of that. Written when the cell is first
// hovered or focused, so a large grid's markup stays small.
export function cellLabel(cell: CellStats, choice: MetricChoice): string {
  const states = Object.entries(cell.states).map(([s, n]) => `${n} ${stateName(s)}`).join(', ');
  const interval = cell.mean !== undefined && cell.half !== undefined ? `, 95% interval ` +
    `[${choice.format(cell.mean - cell.half)}, ${choice.format(cell.mean + cell.half)}]` : '';
  const running = cell.provisional.size ?
    `; ${cell.provisional.size} from running jobs, not final` : '';
  const dropped = cell.dropped.length ?
    `; ${cell.dropped.map((j) => j.spec?.jobId ?? '').join(', ')} dropped by an update, ` +
    'not counted' : '';
  return `${Object.entries(cell.values).map(([d, v]) => `${d}=${v}`).join(', ')}: ` +
    `${choice.format(cell.mean)}${interval} (${cell.samples.size} of ${cell.jobs.length}` +
    ` repeats; ${states}${running}${dropped})`;
}

// The line under the legend: what the grid counts (`jobs` of the spec's cells; `dropped`, those
// an update dropped, left out), and what its marks mean where it has them.
export function gridNote(cells: CellStats[], jobs: number, metric: MetricChoice, dropped = 0):
  string {
  const parts = [`${plural(cells.length, 'cell')} of ${plural(jobs, 'job')}`];
  if (dropped) {
    parts.push(`${plural(dropped, 'job')} an update dropped from the sweep left out, as ` +
      'ablate results leaves them out');
  }
  if (metric.difference) parts.push('the baseline cell is outlined');
  if (cells.some((c) => c.half !== undefined)) {
    parts.push('± is half the 95% confidence interval of the mean over a cell\'s seeds ' +
      '(Student\'s t, as ablate results gives it)');
  }
  if (cells.some((c) => c.provisional.size)) {
    parts.push('~ marks a value with running jobs\' latest in it, not final');
  }
  return `${parts.join('; ')}.`;
}

function cellHtml(cell: CellStats | undefined, index: number, choice: MetricChoice,
  range: [number, number] | null, baseline: string | null): string {
  if (!cell) return '<td class="cell empty" aria-label="no job">·</td>';
  let marks = '';
  for (const s in cell.states) {
    const mark = MARKS[s];
    const n = cell.states[s];
    if (mark) marks += `<span class="mark">${mark}${n > 1 ? n : ''}</span>`;
  }
  const job = cell.jobs.find((j) => j.state === 'JOB_STATE_SUCCEEDED') ?? cell.jobs[0];
  const id = job?.spec?.jobId ?? '';
  let heat = '';
  let color = '';
  if (cell.mean !== undefined && range) {
    const level = levelOf(choice, cell.mean, range[0], range[1]);
    color = levelColor(choice, level);
    heat = ` heat-${level}`;
  }
  const spread = cell.half !== undefined ?
    `<span class="spread">±${escapeHtml(choice.format(cell.half).replace(/^[+−]/, ''))}</span>` :
    '';
  const [provisional, tilde] = cell.provisional.size ? [' provisional', '~'] : ['', ''];
  const base = cell.key === baseline && choice.difference ? ' baseline' : '';
  return `<td class="cell${base}${heat}" tabindex="0" data-index="${index}" data-job-id="${escapeHtml(id)}"` +
    ` data-cell="${escapeHtml(Object.values(cell.values).join('/'))}"` +
    ` data-value="${cell.mean ?? ''}" data-color="${color}"><span class="value${provisional}">` +
    `${tilde}${escapeHtml(choice.format(cell.mean))}</span>${spread}${marks}</td>`;
}

// The markup of every panel: linear in the number of cells, written in one go.
export function gridHtml(session: Pick<SweepSession, 'model'>, choice: GridChoice): { html: string;
  cells: CellStats[]; metric: MetricChoice } {
  const { sweep, jobs } = session.model;
  const baseline = baselineKey(sweep);
  const metric = metricsOf(baseline).find((m) => m.id === choice.metric) ?? GRID_METRICS[0];
  let cells = cellsOf(sweep, jobs, (j) => valueOf(metric, j));
  if (metric.difference && baseline !== null) cells = differencesFrom(cells, baseline);
  const range = extent(cells);
  const panels = pivot(sweep, cells, choice.rows, choice.cols);
  const indexOf = new Map(cells.map((c, i) => [c, i]));
  const parts: string[] = [];
  for (const p of panels) {
    parts.push(`<figure class="panel"><figcaption>${escapeHtml(p.label || 'all cells')}</figcaption>` +
      `<table class="heat" data-panel="${escapeHtml(p.label)}"><thead><tr><th>` +
      `${escapeHtml(choice.cols ? `${choice.rows} \\ ${choice.cols}` : choice.rows)}</th>`);
    for (const c of p.cols) parts.push(`<th scope="col">${escapeHtml(c || metric.label)}</th>`);
    parts.push('</tr></thead><tbody>');
    for (const r of p.rows) {
      parts.push(`<tr><th scope="row">${escapeHtml(r)}</th>`);
      for (const c of p.cols) {
        const cell = p.cells.get(`${r}\u0000${c}`);
        parts.push(cellHtml(cell, cell ? indexOf.get(cell) ?? -1 : -1, metric, range, baseline));
      }
      parts.push('</tr>');
    }
    parts.push('</tbody></table></figure>');
  }
  return { html: parts.join(''), cells, metric };
}

// The metrics a sweep's cells can be colored by: differences only where its spec names a
// baseline.
function metricsOf(baseline: string | null): MetricChoice[] {
  return GRID_METRICS.filter((m) => !m.difference || baseline !== null);
}

function legend(metric: MetricChoice, range: [number, number] | null, ended: boolean):
  HTMLElement {
  if (!range) return h('p', { className: 'muted legend' }, noValues(metric.label, ended));
  const stops = Array.from({ length: 11 }, (_, i) => {
    const v = range[0] + ((range[1] - range[0]) * i) / 10;
    return cellColor(metric, v, range[0], range[1]);
  });
  return h('div', { className: 'legend' },
    h('span', {}, metric.format(range[0])),
    h('span', { className: 'ramp', style: `background:linear-gradient(to right,${stops.join(',')})` } as never),
    h('span', {}, metric.format(range[1])),
    h('span', { className: 'muted' }, metric.lowerIsBetter ? ' (bright: lower, better)' :
      ' (bright: higher, better)'));
}

// Arrow keys move focus between cells, across panels too (grid_keys.ts); Enter opens the focused
// cell's job.
function onKey(event: KeyboardEvent): void {
  const td = (event.target as HTMLElement).closest('td.cell') as HTMLTableCellElement | null;
  if (!td) return;
  if (event.key === 'Enter' && td.dataset.jobId) {
    location.hash = `#/jobs/${encodeURIComponent(td.dataset.jobId)}`;
    return;
  }
  const next = arrowTarget(td, event.key);
  if (next) {
    event.preventDefault();
    next.focus();
  }
}

export function gridView(session: SweepSession): { el: HTMLElement; dispose: () => void } {
  const controls = h('div', { className: 'controls' });
  const legendSlot = h('div');
  const panels = h('div', { className: 'panels', id: 'grid-panels' });
  const scale = h('style');
  const note = h('p', { className: 'muted', id: 'grid-note' });
  const notice = h('p', { className: 'muted', id: 'grid-notice', role: 'status' });
  const el = h('section', { className: 'view', 'data-view': 'grid' }, scale, controls, notice,
    legendSlot, note, panels);
  const params = new URLSearchParams(location.hash.split('?')[1] ?? '');
  // Columns unset until the address or the reader picks them ('' is one column).
  let choice: Omit<GridChoice, 'cols'> & { cols?: string } = { rows: params.get('rows') ?? '',
    cols: params.get('cols') ?? undefined, metric: params.get('metric') ?? 'eval_loss' };
  let fetching = false;
  let last: { cells: CellStats[]; metric: MetricChoice } | null = null;
  let drawn: GridChoice | null = null;

  // A dimension is rows or columns, not both: picking for one axis what the other shows swaps
  // them, unless the other is left with none (one column), when the pick is refused.
  const pick = (axis: 'rows' | 'cols', value: string) => {
    const other = axis === 'rows' ? 'cols' : 'rows';
    notice.textContent = '';
    if (value && value === choice[other]) {
      if (choice[axis]) {
        choice = { ...choice, [axis]: value, [other]: choice[axis] };
        notice.textContent = `Rows and columns swapped: ${value} can be one or the other.`;
      } else {
        notice.textContent = `${value} is the rows already: pick other rows first.`;
      }
    } else {
      choice = { ...choice, [axis]: value };
    }
    render();
  };
  const draw = (out: ReturnType<typeof gridHtml>) => {
    panels.innerHTML = out.html;
    last = out;
    legendSlot.replaceChildren(legend(out.metric, extent(out.cells), session.model.ended()));
    const dropped = session.model.jobs.filter((j) => j.dropped).length;
    note.textContent = gridNote(out.cells, session.model.jobs.length - dropped, out.metric,
      dropped);
  };
  const render = () => {
    const dims = cellDimensions(session.model.sweep);
    if (!dims.includes(choice.rows)) choice.rows = dims[0] ?? '';
    if (choice.cols === undefined || choice.cols === choice.rows ||
      (choice.cols && !dims.includes(choice.cols))) {
      choice.cols = dims.find((d) => d !== choice.rows) ?? '';
    }
    const full: GridChoice = { ...choice, cols: choice.cols };
    drawn = full;
    const options = dims.map((d) => [d, d] as [string, string]);
    const metrics = metricsOf(baselineKey(session.model.sweep));
    controls.replaceChildren(
      select('rows', options, full.rows, (v) => pick('rows', v), 'grid-rows'),
      select('columns', [['', '— (one column)'], ...options], full.cols, (v) => pick('cols', v),
        'grid-cols'),
      select('color by', metrics.map((m) => [m.id, m.label] as [string, string]),
        full.metric, (v) => { choice = { ...choice, metric: v }; render(); }, 'grid-metric'),
      h('button', { type: 'button', id: 'export-csv', onclick: () => {
        if (!last) return;
        download(`${session.sweepId}-results.csv`, new Blob([resultsCsv(cellDimensions(
          session.model.sweep), last.cells, last.metric.id)], { type: 'text/csv' }));
      } }, 'Export CSV'));
    const t0 = performance.now();
    const out = gridHtml(session, full);
    scale.textContent = scaleCss(out.metric);
    draw(out);
    const ms = performance.now() - t0;
    panels.dataset.renderMs = ms.toFixed(1);
    panels.dataset.cells = String(out.cells.length);
    if (out.metric.series && !fetching) {
      fetching = true;
      void fetchLastValues(session.model.jobs.filter((j) => !j.dropped),
        () => draw(gridHtml(session, drawn ?? full))).finally(() => { fetching = false; });
    }
  };
  const describe = (event: Event) => {
    const td = (event.target as HTMLElement).closest('td.cell') as HTMLElement | null;
    const cell = last?.cells[Number(td?.dataset.index)];
    if (!td || !cell || td.title || !last) return;
    td.title = cellLabel(cell, last.metric);
    td.setAttribute('aria-label', td.title);
  };
  panels.addEventListener('mouseover', describe);
  panels.addEventListener('focusin', describe);
  panels.addEventListener('keydown', onKey);
  panels.addEventListener('click', (event) => {
    const td = (event.target as HTMLElement).closest('td.cell') as HTMLElement | null;
    if (td?.dataset.jobId) location.hash = `#/jobs/${encodeURIComponent(td.dataset.jobId)}`;
  });
  // Live changes redraw at most once a second (five times on small sweeps): a running sweep
  // commits many times a second, and a large grid takes a few hundred milliseconds to draw.
  let timer: ReturnType<typeof setTimeout> | undefined;
  let drawnAt = -Infinity;
  const unlisten = session.listen(() => {
    if (timer !== undefined) return;
    const gap = session.model.jobs.length > 2000 ? 1000 : 200;
    timer = setTimeout(() => {
      timer = undefined;
      drawnAt = performance.now();
      render();
    }, Math.max(0, drawnAt + gap - performance.now()));
  });
  return { el, dispose: () => { unlisten(); clearTimeout(timer); } };
}
