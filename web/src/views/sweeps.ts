// Sweeps: every sweep with its jobs' counts by state, progress, elapsed time (an ended sweep's
// whole duration) and an estimate of the rest (elapsed time per ended job, times the jobs left:
// a rough guide that assumes the remaining jobs cost what the ended ones did).
import { api } from '../api';
import { poll } from '../app';
import { h } from '../dom';
import { duration, escapeHtml, relative, seconds, stateName } from '../format';
import type { JobCounts, Sweep } from '../gen/ablate/v1/sweep';
import { cancelButton } from './actions';

const STATES: (keyof JobCounts)[] = ['pending', 'assigned', 'running', 'succeeded', 'failed',
  'cancelled'];

export function ended(counts: JobCounts | undefined): number {
  return (counts?.succeeded ?? 0) + (counts?.failed ?? 0) + (counts?.cancelled ?? 0);
}

// Seconds left at the pace so far; undefined before any job ended or after all did.
export function estimateLeft(counts: JobCounts | undefined, elapsed: number): number | undefined {
  const done = ended(counts);
  const total = counts?.total ?? 0;
  if (done === 0 || done >= total) return undefined;
  return (elapsed / done) * (total - done);
}

// The bar's segments, left to right: jobs that succeeded, failed, were cancelled, then those
// running; pending ones leave the track empty. A failed or cancelled job has ended without
// succeeding, so a sweep of them never reads as complete.
const BAR: (keyof JobCounts)[] = ['succeeded', 'failed', 'cancelled', 'running', 'assigned'];

export function progressBar(counts: JobCounts): string {
  const total = counts.total ?? 0;
  const done = ended(counts);
  const said = STATES.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(', ');
  return `<span class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="${total}"` +
    ` aria-valuenow="${done}" aria-valuetext="${done} of ${total} ended: ${said}"` +
    ` title="${said}">${BAR.filter((s) => counts[s]).map((s) => `<span class="fill ` +
    `fill-${s}" style="width:${(100 * (counts[s] ?? 0)) / total}%"></span>`).join('')}</span>` +
    ` <span class="count">${done}/${total}</span>`;
}

// Seconds from the sweep's creation to `now` (ms since the epoch) while it is active, else to
// its end (Sweep.ended_at); undefined where a time is missing.
export function elapsedSeconds(sweep: Sweep, now: number): number | undefined {
  const created = seconds(sweep.createdAt);
  const end = stateName(sweep.state) === 'active' ? now / 1000 : seconds(sweep.endedAt);
  return created === undefined || end === undefined ? undefined : end - created;
}

function row(sweep: Sweep, now: number): HTMLTableRowElement {
  const counts = sweep.counts ?? {};
  const state = stateName(sweep.state);
  const active = state === 'active';
  const elapsed = elapsedSeconds(sweep, now);
  const id = sweep.id ?? '';
  const tr = h('tr', { 'data-sweep-id': id });
  tr.innerHTML = `
    <td><a href="#/sweeps/${encodeURIComponent(id)}">${escapeHtml(id)}</a>
      <div class="muted">${escapeHtml(sweep.spec?.description ?? '')}</div></td>
    <td><span class="badge state-${state}">${state}</span></td>
    <td class="counts">${STATES.filter((s) => counts[s]).map((s) =>
      `<span class="chip state-${s}" title="${s}">${counts[s]} ${s}</span>`).join(' ')}</td>
    <td>${progressBar(counts)}</td>
    <td title="${escapeHtml(sweep.createdAt ?? '')}">${relative(sweep.createdAt, now)}</td>
    <td class="num elapsed">${duration(elapsed)}</td>
    <td class="num">${active ? duration(estimateLeft(counts, elapsed ?? 0)) : '–'}</td>
    <td class="actions"></td>`;
  if (active) tr.cells[7].append(cancelButton(id, 'sweep'));
  return tr;
}

export function sweepsView(): { el: HTMLElement; dispose: () => void } {
  const tbody = h('tbody');
  const empty = h('p', { className: 'empty', hidden: true });
  empty.innerHTML = 'No sweeps yet: submit one with <code>ablate submit examples/tiny-grid.yaml</code>' +
    ' (or run <code>make demo</code>).';
  const el = h('section', { className: 'view', 'data-view': 'sweeps' },
    h('h1', {}, 'Sweeps'),
    h('div', { className: 'scroll' }, h('table', { className: 'table', id: 'sweeps' },
      h('thead', {}, h('tr', {}, ...['Sweep', 'State', 'Jobs by state', 'Progress', 'Created',
        'Elapsed', 'Estimated rest', ''].map((t) => h('th', {}, t)))),
      tbody)),
    empty);
  const dispose = poll(async () => {
    const { sweeps = [] } = await api.sweeps();
    const now = Date.now();
    tbody.replaceChildren(...sweeps.map((s) => row(s, now)));
    empty.hidden = sweeps.length > 0;
  });
  return { el, dispose };
}
