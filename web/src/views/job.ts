// Job: one job's settings, provenance, attempts with their workers and outcomes, its curves
// (refreshed every two seconds while it runs) and where its checkpoints go. Its log is not
// served by the JSON API, so `ablate logs <job>` is named instead.
import { api } from '../api';
import { poll } from '../app';
import { drawChart } from '../chart';
import { h } from '../dom';
import { duration, escapeHtml, loss, relative, seconds, stateName } from '../format';
import type { GetJobResponse } from '../gen/ablate/v1/sweep_service';
import type uPlot from 'uplot';
import { cancelButton } from './actions';

const ENDED = ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'];

function table(rows: [string, string][], id: string): HTMLTableElement {
  const t = h('table', { className: 'table kv', id });
  t.innerHTML = rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`)
    .join('');
  return t;
}

// A message as [field, value] rows, nested fields dotted.
export function flatten(value: unknown, prefix = ''): [string, string][] {
  if (value === null || typeof value !== 'object') return [[prefix, String(value)]];
  if (Array.isArray(value)) return [[prefix, value.map((v) => JSON.stringify(v)).join(', ')]];
  return Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && v !== '' && !(Array.isArray(v) && !v.length))
    .flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
}

export function jobView(jobId: string): { el: HTMLElement; dispose: () => void } {
  const el = h('section', { className: 'view', 'data-view': 'job' },
    h('h1', {}, 'Job ', h('span', { id: 'job-id' }, jobId)));
  const head = h('div', { className: 'job-head' });
  const chartEl = h('div', { className: 'chart', id: 'job-chart' });
  const details = h('div', { className: 'job-details' });
  el.append(head, h('h2', {}, 'Curves'), chartEl, details);
  let plot: uPlot | null = null;
  let lastStep = '';
  let done = false;

  const render = (r: GetJobResponse) => {
    const job = r.job ?? {};
    const state = stateName(job.state);
    const sweepId = job.spec?.sweepId ?? '';
    head.innerHTML = `<p><a href="#/sweeps/${encodeURIComponent(sweepId)}">← sweep ` +
      `${escapeHtml(sweepId)}</a></p><p><span class="badge state-${state}" id="job-state">` +
      `${state}</span> step ${escapeHtml(String(job.step ?? 0))} of ` +
      `${job.spec?.config?.steps ?? '?'} · last loss ${loss(job.lastLoss)} · final eval loss ` +
      `${loss(job.finalEvalLoss)} · attempts ${job.attempts ?? 0}/${job.maxAttempts ?? 0}` +
      `${job.workerId ? ` · on ${escapeHtml(job.workerId)}` : ''}</p>` +
      `${job.message ? `<p class="error-text">${escapeHtml(job.message)}</p>` : ''}`;
    if (!ENDED.includes(job.state ?? '')) head.append(cancelButton(jobId, `job ${jobId}`));
    if (String(job.step) !== lastStep || !plot) {
      lastStep = String(job.step);
      const lines = (r.metrics ?? []).filter((m) => m.name === 'train/loss' || m.name === 'eval/loss')
        .map((m) => ({ label: m.name ?? '', x: (m.steps ?? []).map(Number),
          y: m.values ?? [] }));
      plot?.destroy();
      plot = drawChart(chartEl, lines, { xLabel: 'step', yLabel: 'loss', logY: false,
        time: false, height: 280 });
    }
    const attempts = h('table', { className: 'table', id: 'attempts' });
    attempts.innerHTML = '<thead><tr><th>Attempt</th><th>Worker</th><th>State</th><th>Started</th>' +
      '<th>Ran</th><th>Exit</th></tr></thead><tbody>' + (r.attempts ?? []).map((a) => {
      const start = seconds(a.startedAt);
      const end = seconds(a.endedAt) ?? Date.now() / 1000;
      return `<tr><td>${escapeHtml(a.id ?? '')}</td><td>${escapeHtml(a.workerId ?? '')}</td>` +
        `<td><span class="badge state-${stateName(a.state)}">${stateName(a.state)}</span></td>` +
        `<td>${relative(a.startedAt)}</td><td>${duration(start === undefined ? undefined : end - start)}` +
        `</td><td>${escapeHtml(a.exit?.reason || (a.exit?.exitCode !== undefined && a.endedAt ?
          `exit ${a.exit.exitCode}` : ''))}</td></tr>`;
    }).join('') + '</tbody>';
    const cell = (job.spec?.cell ?? []).map((c) => [c.dimension ?? '', c.value ?? ''] as [string, string]);
    details.replaceChildren(
      h('h2', {}, 'Attempts'), attempts,
      h('div', { className: 'two-col' },
        h('div', {}, h('h2', {}, 'Cell'), table(cell, 'job-cell'),
          h('h2', {}, 'Checkpoints'), table([['folder', job.spec?.checkpointDir ?? '–']], 'job-ckpt'),
          h('h2', {}, 'Provenance'), table(flatten(job.provenance ?? {}).filter(([k]) =>
            k !== 'configJson'), 'job-provenance'),
          h('h2', {}, 'Log'), h('p', { className: 'muted' }, 'The tail of its log: ',
            h('code', {}, `ablate logs ${jobId}`))),
        h('div', {}, h('h2', {}, 'Settings'), table(flatten(job.spec?.config ?? {}), 'job-settings'))));
    done = ENDED.includes(job.state ?? '');
  };
  let stop = () => {};
  stop = poll(async () => {
    if (done) return;
    render(await api.job(jobId, ['train/loss', 'eval/loss'], 1000));
  });
  return { el, dispose: () => { stop(); plot?.destroy(); } };
}
