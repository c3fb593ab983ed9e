// Workers: each worker's slots and the GPUs it advertises (name and memory), the jobs it runs, its last heartbeat, and a timeline
// of which job ran where and when for the newest sweep (its attempts as bars per worker,
// colored by outcome; gaps are idle time, a lost attempt is a preemption).
import { api } from '../api';
import { poll } from '../app';
import { h } from '../dom';
import { bytes, escapeHtml, relative, seconds, stateName } from '../format';
import type { Attempt } from '../gen/ablate/v1/job';
import { OKABE_ITO } from '../palette';

const OUTCOME: Record<string, string> = { succeeded: OKABE_ITO[2], failed: OKABE_ITO[5],
  cancelled: OKABE_ITO[7], lost: OKABE_ITO[1], running: OKABE_ITO[0], assigned: OKABE_ITO[4] };

export function timelineSvg(attempts: Attempt[], now: number): string {
  const rows = [...new Set(attempts.map((a) => a.workerId ?? ''))].sort();
  if (!attempts.length) return '<p class="empty">No attempts yet.</p>';
  const starts = attempts.map((a) => seconds(a.startedAt) ?? now);
  const t0 = Math.min(...starts);
  const t1 = Math.max(now, ...attempts.map((a) => seconds(a.endedAt) ?? now));
  const W = 900, L = 120, RH = 26;
  const x = (t: number) => L + ((t - t0) / (t1 - t0 || 1)) * (W - L - 10);
  const bars = attempts.map((a, i) => {
    const y = rows.indexOf(a.workerId ?? '') * RH + 4;
    const s = stateName(a.state);
    const x0 = x(starts[i]);
    const w = Math.max(2, x(seconds(a.endedAt) ?? now) - x0);
    return `<rect x="${x0.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${RH - 8}"` +
      ` fill="${OUTCOME[s] ?? OKABE_ITO[7]}" data-job-id="${escapeHtml(a.jobId ?? '')}">` +
      `<title>${escapeHtml(a.jobId ?? '')} · attempt ${escapeHtml(a.id ?? '')} · ${s}</title></rect>`;
  }).join('');
  const labels = rows.map((r, i) => `<text x="4" y="${i * RH + 18}">${escapeHtml(r)}</text>`).join('');
  return `<svg id="timeline" class="timeline" viewBox="0 0 ${W} ${rows.length * RH + 8}"` +
    ` width="${W}" height="${rows.length * RH + 8}" role="img" aria-label="attempts per worker over time">` +
    `<style>text{font:12px sans-serif;fill:currentColor}</style>${labels}${bars}</svg>` +
    `<p class="legend">${Object.entries(OUTCOME).map(([s, c]) =>
      `<span class="swatch" style="background:${c}"></span> ${s}`).join(' ')}</p>`;
}

export function workersView(): { el: HTMLElement; dispose: () => void } {
  const tbody = h('tbody');
  const timeline = h('div', { id: 'timeline-slot' });
  const caption = h('p', { className: 'muted' });
  const empty = h('p', { className: 'empty', hidden: true },
    'No workers have connected: start one with ablate-worker --coordinator HOST:PORT.');
  const el = h('section', { className: 'view', 'data-view': 'workers' }, h('h1', {}, 'Workers'),
    h('div', { className: 'scroll' }, h('table', { className: 'table', id: 'workers' },
      h('thead', {}, h('tr', {}, ...['Worker', 'Connected', 'Slots', 'GPUs', 'Free',
        'Running jobs', 'Last heartbeat'].map((t) => h('th', {}, t)))), tbody)), empty,
    h('h2', {}, 'Timeline'), caption, timeline);
  let timelineAt = 0;
  const dispose = poll(async () => {
    const { workers = [] } = await api.workers();
    const now = Date.now();
    empty.hidden = workers.length > 0;
    tbody.innerHTML = workers.map((w) => {
      const slots = w.info?.slots ?? [];
      const gpus = slots.filter((s) => s.kind === 'DEVICE_KIND_CUDA');
      return `<tr data-worker-id="${escapeHtml(w.info?.workerId ?? '')}">` +
        `<td>${escapeHtml(w.info?.workerId ?? '')}<div class="muted">${escapeHtml(w.info?.hostname ?? '')}</div></td>` +
        `<td>${w.connected ? '<span class="badge state-running">connected</span>' :
          '<span class="badge state-cancelled">gone</span>'}</td>` +
        `<td class="num">${slots.length} ${gpus.length ? 'GPU' : 'CPU'}</td>` +
        `<td class="gpus">${gpus.map((g) => `<div data-gpu="${g.index ?? 0}">` +
          `${g.index ?? 0}: ${escapeHtml(g.name ?? 'GPU')} · ${bytes(Number(g.memoryBytes ?? 0))}` +
          '</div>').join('') || '<span class="muted">none</span>'}</td>` +
        `<td class="num">${w.freeSlots ?? 0}</td>` +
        `<td>${(w.jobIds ?? []).map((j) => `<a href="#/jobs/${encodeURIComponent(j)}">${escapeHtml(j)}</a>`).join(' ')}</td>` +
        `<td title="${escapeHtml(w.lastSeen ?? '')}">${relative(w.lastSeen, now)}</td></tr>`;
    }).join('');
    // The timeline reads every attempt of up to 200 jobs: every 10 s is enough.
    if (now - timelineAt < 10_000) return;
    timelineAt = now;
    const { sweeps = [] } = await api.sweeps();
    const sweep = sweeps[0];
    if (!sweep?.id) return;
    const page = await api.jobsPage(sweep.id);
    const jobs = (page.jobs ?? []).filter((j) => (j.attempts ?? 0) > 0).slice(0, 200);
    const attempts: Attempt[] = [];
    for (let i = 0; i < jobs.length; i += 8) {
      const details = await Promise.all(jobs.slice(i, i + 8).map((j) =>
        api.job(j.spec?.jobId ?? '', ['none'], 1)));
      for (const d of details) attempts.push(...(d.attempts ?? []));
    }
    caption.textContent = `Attempts of sweep ${sweep.id} (${jobs.length} jobs that ran), by worker.`;
    timeline.innerHTML = timelineSvg(attempts, now / 1000);
  });
  return { el, dispose };
}
