// Job: one job's settings, provenance, attempts (numbered as the job counts them, beside the
// coordinator's ids) with their workers and outcomes, its curves and its GPUs' health
// (gpu_panel.ts), the tail of its log as its worker last sent it, and where its checkpoints go;
// refreshed every two seconds while it runs.
import { NotFound, api } from '../api';
import { poll } from '../app';
import { drawChart } from '../chart';
import { h, select } from '../dom';
import { duration, escapeHtml, loss, relative, seconds, stateName } from '../format';
import type { Attempt, Job } from '../gen/ablate/v1/job';
import type { GetJobResponse, JobLog } from '../gen/ablate/v1/sweep_service';
import { attemptName, attemptOrdinals, attemptsText, permanentFailure, whyNotStarted } from
  '../attempts';
import { gpuSeriesNames } from '../gpu';
import { evalLossText, flatten, settingsRows } from '../job_details';
import { jobEnded } from '../sweep_model';
import type uPlot from 'uplot';
import { cancelButton, retryButton } from './actions';
import { gpuPanel } from './gpu_panel';
import { showNotFound } from './not_found';

const RETRYABLE = ['JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'];
const CURVES = ['train/loss', 'eval/loss'];
// Beside the state of a job an update of its sweep dropped (Job.dropped).
const DROPPED_BADGE = '<span class="badge dropped" id="job-dropped" title="an update of its ' +
  'sweep left its cell out or changed its settings: ablate results and the sweep\'s grid ' +
  'leave it out">dropped by an update</span>';
// Refreshes of the log after the job ended: its last lines arrive with its end, or just after.
const LOG_REFRESHES_AFTER_END = 3;

// What the Curves box says of a job with no point: none yet, or none ever.
function noMetrics(job: Job): string {
  if (!jobEnded(job.state)) {
    return 'No metrics yet: they arrive with the job\'s first logged steps.';
  }
  return `No metrics: the job ended before reporting any${Number(job.step ?? 0) === 0 ?
    ' (it never started training)' : ''}.`;
}

function table(rows: [string, string][], id: string): HTMLElement {
  const t = h('table', { className: 'table kv', id });
  t.innerHTML = rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`)
    .join('');
  return h('div', { className: 'scroll' }, t);
}

// Above the log: whose log it shows, the newest attempt's ('') or an earlier one's by id, among
// those that started a trainer (one refused before wrote no log), newest first.
function logPicker(attempts: Attempt[], ordinals: Map<string, number>, chosen: string,
  onChange: (id: string) => void): HTMLElement {
  const started = attempts.filter((a) => !a.neverStarted).map((a) => String(a.id ?? ''))
    .sort((x, y) => (ordinals.get(y) ?? 0) - (ordinals.get(x) ?? 0));
  return select('Attempt', [['', 'newest'], ...started.map((id): [string, string] =>
    [id, attemptName(ordinals.get(id), id)])], chosen, onChange, 'job-log-attempt');
}

// The job's attempts: its own count of each and the coordinator's id, which the worker's folder
// (attempt-ID) and the logs go by.
function attemptsTable(attempts: Attempt[], ordinals: Map<string, number>): HTMLElement {
  const t = h('table', { className: 'table', id: 'attempts' });
  t.innerHTML = '<thead><tr><th>Attempt</th><th title="the coordinator\'s attempt id: its ' +
    'worker\'s folder attempt-ID and the logs go by it">Id</th><th>Worker</th><th>State</th>' +
    '<th>Started</th><th>Ran</th><th>Exit</th></tr></thead><tbody>' + attempts.map((a) => {
    const start = seconds(a.startedAt);
    const end = seconds(a.endedAt) ?? Date.now() / 1000;
    const id = escapeHtml(String(a.id ?? ''));
    const state = stateName(a.state);
    return `<tr><td title="attempt id ${id}" data-attempt-id="${id}">` +
      `${ordinals.get(String(a.id ?? ''))}</td><td>${id}</td>` +
      `<td>${escapeHtml(a.workerId ?? '')}</td>` +
      `<td><span class="badge state-${state}">${state}</span></td>` +
      `<td>${relative(a.startedAt)}</td>` +
      `<td>${duration(start === undefined ? undefined : end - start)}</td>` +
      `<td>${escapeHtml(a.exit?.reason || (a.exit?.exitCode !== undefined && a.endedAt ?
        `exit ${a.exit.exitCode}` : ''))}</td></tr>`;
  }).join('') + '</tbody>';
  return t;
}

export function jobView(jobId: string): { el: HTMLElement; dispose: () => void } {
  const el = h('section', { className: 'view', 'data-view': 'job' },
    h('h1', {}, 'Job ', h('span', { id: 'job-id' }, jobId)));
  const head = h('div', { className: 'job-head' });
  const chartEl = h('div', { className: 'chart', id: 'job-chart' });
  const noCurves = h('p', { className: 'empty', id: 'job-chart-empty', hidden: true });
  const details = h('div', { className: 'job-details' });
  const logCaption = h('p', { className: 'muted', id: 'job-log-caption' });
  const logEl = h('pre', { className: 'log', id: 'job-log', tabIndex: 0,
    'aria-label': 'the end of the job\'s log' });
  const gpus = gpuPanel();
  const pickerEl = h('div', { id: 'job-log-picker' });
  el.append(head, h('h2', {}, 'Curves'), noCurves, chartEl, gpus.el, h('h2', {}, 'Log'),
    pickerEl, logCaption, logEl, details);
  let gpuNames: string[] = [];
  let plot: uPlot | null = null;
  let lastStep = '';
  let done = false;
  let ordinals = new Map<string, number>();
  // Where the job's current attempt never started its trainer: what the log's caption says.
  let noLog: string | undefined;
  // The attempt whose log is shown ('' the newest), and the attempts the picker was drawn for.
  let chosen = '';
  let pickerFor = '';
  let attemptList: Attempt[] = [];

  const render = (r: GetJobResponse) => {
    const job = r.job ?? {};
    const state = stateName(job.state);
    const sweepId = job.spec?.sweepId ?? '';
    head.innerHTML = `<p><a href="#/sweeps/${encodeURIComponent(sweepId)}">← sweep ` +
      `${escapeHtml(sweepId)}</a></p><p><span class="badge state-${state}" id="job-state">` +
      `${state}</span>${job.dropped ? ` ${DROPPED_BADGE}` : ''} step ` +
      `${escapeHtml(String(job.step ?? 0))} of ` +
      `${job.spec?.config?.steps ?? '?'} · last loss ${loss(job.lastLoss)} · ` +
      `${evalLossText(job)} · attempts ${escapeHtml(attemptsText(job))}` +
      `${job.workerId ? ` · on ${escapeHtml(job.workerId)}` : ''}</p>` +
      `${job.message ? `<p class="error-text">${escapeHtml(job.message)}</p>` : ''}`;
    if (!jobEnded(job.state)) head.append(cancelButton(jobId, 'job'));
    if (RETRYABLE.includes(job.state ?? '')) {
      const permanent = permanentFailure(r.attempts ?? []);
      // Polling resumes: the job runs again.
      head.append(retryButton(sweepId, jobId, permanent, () => {
        done = false;
        refreshesAfterEnd = 0;
      }));
      if (permanent) {
        head.append(h('span', { className: 'muted', id: 'job-retry-warning' }, ' Its last ' +
          'attempt failed permanently: a retry will most likely fail the same way unless the ' +
          'cause was fixed.'));
      }
    }
    if (String(job.step) !== lastStep || !plot) {
      lastStep = String(job.step);
      const lines = (r.metrics ?? []).filter((m) => CURVES.includes(m.name ?? ''))
        .map((m) => ({ label: m.name ?? '', x: (m.steps ?? []).map(Number),
          y: m.values ?? [] }));
      plot?.destroy();
      plot = null;
      // No point to draw: a line says why, in place of empty axes.
      const empty = !lines.some((l) => l.x.length);
      chartEl.hidden = empty;
      noCurves.hidden = !empty;
      noCurves.textContent = noMetrics(job);
      if (!empty) {
        plot = drawChart(chartEl, lines, { xLabel: 'step', yLabel: 'loss', logY: false,
          time: false, height: 280 });
      }
    }
    ordinals = attemptOrdinals(r.attempts ?? []);
    const current = String(job.currentAttemptId ?? '');
    const why = whyNotStarted((r.attempts ?? []).find((a) => String(a.id ?? '') === current));
    noLog = why === undefined ? undefined :
      `No log: ${attemptName(ordinals.get(current), current)} never started its trainer: ${why}`;
    attemptList = r.attempts ?? [];
    const listed = attemptList.map((a) => `${a.id}:${a.neverStarted ? 1 : 0}`).join(',');
    if (listed !== pickerFor) {
      pickerFor = listed;
      pickerEl.replaceChildren(logPicker(attemptList, ordinals, chosen, (id) => {
        chosen = id;
        // An earlier attempt's log may be asked for after the job ended: fetch it at once.
        refreshesAfterEnd = 0;
        void api.jobLog(jobId, chosen).then(renderLog);
      }));
    }
    const attempts = attemptsTable(attemptList, ordinals);
    const cell = (job.spec?.cell ?? []).map((c) => [c.dimension ?? '', c.value ?? ''] as
      [string, string]);
    const provenance = flatten(job.provenance ?? {}).filter(([k]) => k !== 'configJson');
    details.replaceChildren(
      h('h2', {}, 'Attempts'), h('div', { className: 'scroll' }, attempts),
      h('div', { className: 'two-col' },
        h('div', {}, h('h2', {}, 'Cell'), table(cell, 'job-cell'),
          h('h2', {}, 'Checkpoints'), table([['folder', job.spec?.checkpointDir ?? '–']], 'job-ckpt'),
          h('h2', {}, 'Provenance'), provenance.length ? table(provenance, 'job-provenance') :
            h('p', { className: 'empty', id: 'job-provenance' }, 'None recorded: a job\'s ' +
              'trainer reports its code version, seeds and device as it starts.')),
        h('div', {}, h('h2', {}, 'Settings'), table(settingsRows(job.spec?.config ?? {},
          job.provenance?.configJson), 'job-settings'))));
    gpus.update(r.metrics ?? []);
    done = jobEnded(job.state);
  };
  const renderLog = (log: JobLog) => {
    // An answer for the attempt shown before the picker changed, which arrived after.
    if (chosen && log.attemptId && String(log.attemptId) !== chosen) return;
    const lines = log.lines ?? [];
    const text = lines.join('\n');
    if (logEl.textContent !== text) {
      // Follows the end unless the reader scrolled up.
      const atEnd = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 4;
      logEl.textContent = text;
      if (atEnd) logEl.scrollTop = logEl.scrollHeight;
    }
    logEl.hidden = !lines.length;
    const id = String(log.attemptId ?? '');
    const wanted = attemptList.find((a) => String(a.id ?? '') === chosen);
    logCaption.textContent = chosen && !lines.length ?
      `The coordinator holds no line of ${attemptName(ordinals.get(chosen), chosen)}: it keeps ` +
        'the newest attempt\'s and the 8 newest ended ones\'. Its whole log is trainer.log in ' +
        `${wanted?.folder || `<work dir>/${jobId}/attempt-${chosen}/`} on worker ` +
        `${wanted?.workerId ?? '?'}.` :
      lines.length ?
      `The last ${lines.length === 1 ? 'line' : `${lines.length} lines`} of rank 0's log, ` +
        `${id ? attemptName(ordinals.get(id), id) : 'its newest attempt'}, received ` +
        `${relative(log.updatedAt)}${log.truncated ? ' (earlier lines left out)' : ''}.` :
      noLog ?? 'No log lines have arrived: the worker sends them every few seconds while the job ' +
        'runs.';
  };
  const fetchJob = async () => {
    let r = await api.job(jobId, [...CURVES, ...gpuNames], 1000);
    // The job's GPU count names its GPU series: known after the first answer.
    const count = r.job?.spec?.config?.gpus ?? 0;
    if (count > 0 && !gpuNames.length) {
      gpuNames = gpuSeriesNames(count);
      r = await api.job(jobId, [...CURVES, ...gpuNames], 1000);
    }
    return r;
  };
  let refreshesAfterEnd = 0;
  const stop = poll(async () => {
    if (refreshesAfterEnd > LOG_REFRESHES_AFTER_END) {
      // Nothing left to fetch; asking still keeps the header's indicator true to the connection.
      await api.whoami();
      return;
    }
    if (!done) {
      let r;
      try {
        r = await fetchJob();
      } catch (e) {
        if (!(e instanceof NotFound)) throw e;
        // No such job: one line says so, in place of its empty sections.
        stop();
        showNotFound(el, `No job ${jobId} on this coordinator.`);
        return;
      }
      render(r);
    }
    renderLog(await api.jobLog(jobId, chosen));
    if (done) refreshesAfterEnd++;
  });
  return { el, dispose: () => { stop(); plot?.destroy(); gpus.dispose(); } };
}
