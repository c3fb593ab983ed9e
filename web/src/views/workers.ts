// Workers: each worker's slots and the GPUs it advertises (name and memory), the jobs it runs,
// its last heartbeat, whether it backs off after trainers failed to start there (why, and when
// it is tried again), and a timeline of which job ran where and when for a sweep the reader
// picks, the newest at first (its attempts as bars per worker on a time axis, colored by
// outcome, each named as its job's page names it; gaps are idle time, a lost attempt is a
// preemption).
import { api } from '../api';
import { poll } from '../app';
import { attemptName, attemptOrdinals } from '../attempts';
import { h, select } from '../dom';
import { bytes, escapeHtml, relative, seconds, stateName } from '../format';
import type { Attempt } from '../gen/ablate/v1/job';
import type { WorkerBackoff } from '../gen/ablate/v1/worker';
import { OKABE_ITO } from '../palette';

const OUTCOME: Record<string, string> = { succeeded: OKABE_ITO[2], failed: OKABE_ITO[5],
  cancelled: OKABE_ITO[7], lost: OKABE_ITO[1], running: OKABE_ITO[0], assigned: OKABE_ITO[4] };

const pad = (n: number) => String(n).padStart(2, '0');

// A time on the axis in the reader's zone: the clock, and the date too unless the tick before
// (`from`) fell on the same day, so labels stay short and each day is named once.
function clock(t: number, from?: number): string {
  const d = new Date(t * 1000);
  const day = (x: Date) => `${x.getFullYear()}-${pad(x.getMonth() + 1)}-${pad(x.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return from !== undefined && day(d) === day(new Date(from * 1000)) ? time : `${day(d)} ${time}`;
}

// Why a worker takes no work and when it is tried again, as `ablate workers` says it.
export function backoffText(backoff: WorkerBackoff, nowMs: number): string {
  const failures = backoff.failures ?? 0;
  const left = backoff.retryAt ? Date.parse(backoff.retryAt) - nowMs : 0;
  return `not taking work: ${backoff.reason ?? ''}` +
    (failures > 1 ? ` (${failures} failed starts in a row)` : '') +
    (left > 0 ? `; next try in ${Math.ceil(left / 1000)} s` :
      '; trying one job until a trainer starts there');
}

// Where the axis below the bars puts its ticks, as fractions of the time shown.
const TICKS = [0, 0.25, 0.5, 0.75, 1];

// The attempts as bars per worker over time, from the first start to the last end (now, while
// one runs), above an axis of clock times that names the date where a day begins.
export function timelineSvg(attempts: Attempt[], now: number): string {
  const rows = [...new Set(attempts.map((a) => a.workerId ?? ''))].sort();
  if (!attempts.length) return '<p class="empty">No attempts yet.</p>';
  const starts = attempts.map((a) => seconds(a.startedAt) ?? now);
  const t0 = Math.min(...starts);
  const t1 = Math.max(...attempts.map((a) => seconds(a.endedAt) ?? now));
  const W = 900, L = 120, R = 10, RH = 26, AXIS = 24;
  const x = (t: number) => L + ((t - t0) / (t1 - t0 || 1)) * (W - L - R);
  const ordinals = attemptOrdinals(attempts);
  const bars = attempts.map((a, i) => {
    const y = rows.indexOf(a.workerId ?? '') * RH + 4;
    const s = stateName(a.state);
    const x0 = x(starts[i]);
    const w = Math.max(2, x(seconds(a.endedAt) ?? now) - x0);
    return `<rect x="${x0.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${RH - 8}"` +
      ` fill="${OUTCOME[s] ?? OKABE_ITO[7]}" data-job-id="${escapeHtml(a.jobId ?? '')}">` +
      `<title>job ${escapeHtml(a.jobId ?? '')}, ${escapeHtml(attemptName(
        ordinals.get(a.id ?? ''), a.id ?? ''))}: ${s}</title></rect>`;
  }).join('');
  const labels = rows.map((r, i) => `<text x="4" y="${i * RH + 18}">${escapeHtml(r)}</text>`).join('');
  const base = rows.length * RH + 6;
  const times = TICKS.map((f) => t0 + f * (t1 - t0));
  const ticks = times.map((t, i) => {
    const anchor = i === 0 ? 'start' : i === TICKS.length - 1 ? 'end' : 'middle';
    return `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${base}" y2="${base + 4}"` +
      ' stroke="currentColor"/>' + `<text class="tick" x="${x(t).toFixed(1)}" y="${base + 17}"` +
      ` text-anchor="${anchor}">${clock(t, times[i - 1])}</text>`;
  }).join('');
  const height = base + AXIS;
  return `<svg id="timeline" class="timeline" viewBox="0 0 ${W} ${height}"` +
    ` width="${W}" height="${height}" role="img" aria-label="attempts per worker over time">` +
    `<style>text{font:12px sans-serif;fill:currentColor}</style>${labels}${bars}` +
    `<g class="axis"><line x1="${L}" x2="${W - R}" y1="${base}" y2="${base}"` +
    ` stroke="currentColor"/>${ticks}</g></svg>` +
    `<p class="legend">${Object.entries(OUTCOME).map(([s, c]) =>
      `<span class="swatch" style="background:${c}"></span> ${s}`).join(' ')}</p>`;
}

// The attempts of the first 200 jobs of a sweep that ran, and how many jobs those are.
async function attemptsOf(sweepId: string): Promise<{ attempts: Attempt[]; jobs: number }> {
  const page = await api.jobsPage(sweepId);
  const jobs = (page.jobs ?? []).filter((j) => (j.attempts ?? 0) > 0).slice(0, 200);
  const attempts: Attempt[] = [];
  for (let i = 0; i < jobs.length; i += 8) {
    // Only the attempts are read: one point of a series every job that stepped has, since
    // naming a series the job lacks makes the API look up the names of those it has.
    const details = await Promise.all(jobs.slice(i, i + 8).map((j) =>
      api.job(j.spec?.jobId ?? '', ['train/loss'], 1)));
    for (const d of details) attempts.push(...(d.attempts ?? []));
  }
  return { attempts, jobs: jobs.length };
}

export function workersView(): { el: HTMLElement; dispose: () => void } {
  const tbody = h('tbody');
  const timeline = h('div', { id: 'timeline-slot' });
  const caption = h('p', { className: 'muted', id: 'timeline-caption' });
  const picker = h('div', { className: 'controls' });
  const empty = h('p', { className: 'empty', hidden: true },
    'No workers have connected: start one with ablate-worker --coordinator HOST:PORT.');
  const el = h('section', { className: 'view', 'data-view': 'workers' }, h('h1', {}, 'Workers'),
    h('div', { className: 'scroll' }, h('table', { className: 'table', id: 'workers' },
      h('thead', {}, h('tr', {}, ...['Worker', 'Connected', 'Slots', 'GPUs', 'Free',
        'Running jobs', 'Last heartbeat'].map((t) => h('th', {}, t)))), tbody)), empty,
    h('h2', {}, 'Timeline'), picker, caption, timeline);
  let timelineAt = 0;
  let sweepId = '';  // whose attempts show: the newest sweep until the reader picks another
  let listed = '';
  let loads = 0;
  // Only the newest load draws: the reader may pick another sweep while one is out.
  const drawTimeline = async () => {
    const load = ++loads;
    const id = sweepId;
    const { attempts, jobs } = await attemptsOf(id);
    if (load !== loads) return;
    caption.textContent = `Attempts of sweep ${id} (${jobs} jobs that ran), by worker.`;
    timeline.innerHTML = timelineSvg(attempts, Date.now() / 1000);
  };
  const dispose = poll(async () => {
    const { workers = [] } = await api.workers();
    const now = Date.now();
    empty.hidden = workers.length > 0;
    tbody.innerHTML = workers.map((w) => {
      const slots = w.info?.slots ?? [];
      const gpus = slots.filter((s) => s.kind === 'DEVICE_KIND_CUDA');
      return `<tr data-worker-id="${escapeHtml(w.info?.workerId ?? '')}">` +
        `<td>${escapeHtml(w.info?.workerId ?? '')}<div class="muted">${escapeHtml(w.info?.hostname ?? '')}</div></td>` +
        `<td>${!w.connected ? '<span class="badge state-cancelled">gone</span>' :
          w.backoff ? '<span class="badge state-failed">backing off</span>' +
            `<div class="muted">${escapeHtml(backoffText(w.backoff, now))}</div>` :
            '<span class="badge state-running">connected</span>'}</td>` +
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
    const ids = sweeps.map((s) => s.id ?? '').filter((id) => id);
    if (!ids.includes(sweepId)) sweepId = ids[0] ?? '';
    // Made afresh only when the sweeps change, so an open list stays open.
    if (ids.join('\n') !== listed) {
      listed = ids.join('\n');
      const options = ids.map((id) => [id, id] as [string, string]);
      picker.replaceChildren(...(ids.length ? [select('sweep', options, sweepId, (id) => {
        sweepId = id;
        // A failure is left to the next refresh, which says what went wrong.
        drawTimeline().catch(() => { timelineAt = 0; });
      }, 'timeline-sweep')] : []));
    }
    if (sweepId) await drawTimeline();
  });
  return { el, dispose };
}
