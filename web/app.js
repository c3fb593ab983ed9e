// The Ablate dashboard: the sweeps list, and one sweep's jobs at #/sweeps/<id>. It reads the
// coordinator's JSON API (protobuf's JSON mapping: camelCase names, enums by name, int64 as
// strings, unset optional fields absent) and redraws every second in place: rows are keyed by
// id and only changed text is written, so nothing flickers while a sweep runs. A sweep's page
// follows the sweep's event stream (server-sent events) rather than polling its jobs, and
// polls the JSON API only where the stream is refused.
//
// Every API request carries the bearer token the user entered in the header's token field
// (kept in this browser's localStorage, never in a cookie, so other sites' pages cannot make
// the browser send it). A token can also be handed over in the address, #token=... or
// #/sweeps/<id>&token=...; it is stored and removed from the address at once.

import { TokenEventSource } from './token_event_source.js';

const POLL_MS = 1000;
const CURVE = 'train/loss';
// Points per curve, thinned by the coordinator: a sparkline 120 pixels wide shows no more.
const CURVE_POINTS = 60;
// Rows drawn at most; a larger sweep shows its first jobs and says how many there are.
const MAX_ROWS = 100;
// Curves are fetched only for jobs whose step moved, and at most this many per refresh, so a
// large sweep does not turn each refresh into hundreds of requests.
const CURVE_FETCHES_PER_REFRESH = 8;

// A fetch that got no answer from the coordinator, as opposed to an answer that is an error.
class Unreachable extends Error {}

const TOKEN_KEY = 'ablate.token';

function takeTokenFromAddress() {
  const match = location.hash.match(/[#&]token=([^&]*)/);
  if (!match) return;
  localStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  let rest = location.hash.replace(/[#&]token=[^&]*/, '');
  if (rest && !rest.startsWith('#')) rest = `#${rest}`;
  history.replaceState(null, '', location.pathname + location.search + rest);
}

function apiHeaders(extra = {}) {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function getJson(path) {
  let response;
  try {
    response = await fetch(path,
      { cache: 'no-store', headers: apiHeaders({ Accept: 'application/json' }) });
  } catch (e) {
    throw new Unreachable(String(e));
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Unreachable(`${path}: HTTP ${response.status} without a JSON body`);
  }
  // The API answers an error as {"error": "...", "code": "NOT_FOUND"}; its message is shown.
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function setAttr(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

// "JOB_STATE_RUNNING" -> "running".
function stateName(value, prefix) {
  return (value || `${prefix}UNSPECIFIED`).replace(prefix, '').toLowerCase();
}

function setBadge(node, state) {
  setText(node, state);
  setAttr(node, 'class', `badge state-${state}`);
}

function doneOf(counts = {}) {
  return (counts.succeeded || 0) + (counts.failed || 0) + (counts.cancelled || 0);
}

function loss(value) {
  return typeof value === 'number' ? value.toFixed(4) : '–';
}

// Makes `tbody` hold one row per item in order, reusing the row that already shows an item
// (found by its data-<attr> key) and creating the others.
function syncRows(tbody, items, attr, keyOf, create, update) {
  const existing = new Map();
  for (const row of tbody.rows) existing.set(row.dataset[attr], row);
  let next = tbody.firstElementChild;
  for (const item of items) {
    const key = keyOf(item);
    let row = existing.get(key);
    if (row) {
      existing.delete(key);
    } else {
      row = create(item);
      row.dataset[attr] = key;
    }
    update(row, item);
    if (row === next) next = next.nextElementSibling;
    else tbody.insertBefore(row, next);
  }
  for (const row of existing.values()) row.remove();
}

function rowOf(cells) {
  const row = document.createElement('tr');
  for (const [className, inner] of cells) {
    const td = row.insertCell();
    td.className = className;
    if (inner) td.append(inner());
  }
  return row;
}

const span = (className) => () => Object.assign(document.createElement('span'), { className });
const link = () => document.createElement('a');

// --- The sweeps list ---------------------------------------------------------------------

function progressBar() {
  const bar = span('bar')();
  bar.append(span('fill')());
  return bar;
}

function createSweepRow() {
  const row = rowOf([['id', link], ['name'], ['state', span('badge')], ['progress', progressBar],
    ['created']]);
  row.cells[3].append(span('count')());
  return row;
}

function updateSweepRow(row, sweep) {
  const [id, name, state, progress, created] = row.cells;
  const a = id.firstChild;
  setAttr(a, 'href', `#/sweeps/${enc(sweep.id)}`);
  setText(a, sweep.id);
  setText(name, sweep.spec?.name || '');
  setBadge(state.firstChild, stateName(sweep.state, 'SWEEP_STATE_'));
  const done = doneOf(sweep.counts);
  const total = sweep.counts?.total || 0;
  progress.querySelector('.fill').style.width = `${total ? (100 * done) / total : 0}%`;
  setText(progress.querySelector('.count'), `${done}/${total}`);
  setText(created, sweep.createdAt ? new Date(sweep.createdAt).toLocaleString() : '–');
}

async function refreshSweeps(isCurrent) {
  const { sweeps = [] } = await getJson('/api/v1/sweeps');
  if (!isCurrent()) return;
  syncRows($('sweeps').tBodies[0], sweeps, 'sweepId', (s) => s.id, createSweepRow,
    updateSweepRow);
  $('sweeps-empty').hidden = sweeps.length > 0;
  document.title = 'Ablate';
}

// --- One sweep's jobs --------------------------------------------------------------------

const curves = new Map();  // job id -> { step, values } of its train/loss curve

function jobColumns(dimensions) {
  return ['Job', ...dimensions, 'State', 'Attempts', 'Step', 'Loss', 'Eval loss', CURVE,
    'Message'];
}

function createJobRow(dimensions) {
  return rowOf([['job'], ...dimensions.map(() => ['dim']), ['state', span('badge')],
    ['attempts num'], ['step num'], ['loss num'], ['eval num'], ['curve'], ['message']]);
}

function updateJobRow(row, job, sweep, dimensions) {
  const cells = [...row.cells];
  const id = job.spec?.jobId || '';
  const prefix = `${sweep.id}-`;
  setText(cells[0], id.startsWith(prefix) ? id.slice(prefix.length) : id);
  setAttr(cells[0], 'title', id);
  const values = new Map((job.spec?.cell || []).map((c) => [c.dimension, c.value]));
  dimensions.forEach((d, i) => {
    setAttr(cells[1 + i], 'data-dimension', d);
    setText(cells[1 + i], values.get(d) ?? '');
  });
  const [state, attempts, step, last, evalLoss, curve, message] =
    cells.slice(1 + dimensions.length);
  const name = stateName(job.state, 'JOB_STATE_');
  setAttr(row, 'data-state', name);
  setBadge(state.firstChild, name);
  setText(attempts, `${job.attempts || 0}/${job.maxAttempts || 0}`);
  setText(step, String(Number(job.step || 0)));
  setText(last, loss(job.lastLoss));
  setText(evalLoss, loss(job.finalEvalLoss));
  setText(message, job.message || '');
  drawCurve(curve, curves.get(id));
}

function drawCurve(td, curve) {
  if (!curve || td.dataset.step === curve.step) return;
  td.dataset.step = curve.step;
  const values = curve.values.map(Number).filter(Number.isFinite);
  if (values.length < 2) return;
  const [w, h] = [120, 24];
  const min = Math.min(...values);
  const range = Math.max(...values) - min || 1;
  const points = values.map((v, i) => {
    const x = (i / (values.length - 1)) * w;
    const y = h - 1 - ((v - min) / range) * (h - 2);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  let svg = td.querySelector('svg');
  if (!svg) {
    const ns = 'http://www.w3.org/2000/svg';
    svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    svg.setAttribute('class', 'sparkline');
    svg.append(document.createElementNS(ns, 'title'), document.createElementNS(ns, 'polyline'));
    td.append(svg);
  }
  svg.querySelector('polyline').setAttribute('points', points.join(' '));
  svg.querySelector('title').textContent =
    `${CURVE}: ${loss(values[0])} → ${loss(values[values.length - 1])}`;
}

async function refreshCurves(jobs, isCurrent) {
  const stale = jobs
    .filter((j) => Number(j.step || 0) > 0 && curves.get(j.spec?.jobId)?.step !== j.step)
    .slice(0, CURVE_FETCHES_PER_REFRESH);
  await Promise.allSettled(stale.map(async (job) => {
    const id = job.spec.jobId;
    const { metrics = [] } =
      await getJson(`/api/v1/jobs/${enc(id)}?metrics=${enc(CURVE)}&max_points=${CURVE_POINTS}`);
    curves.set(id, { step: job.step, values: metrics.find((m) => m.name === CURVE)?.values || [] });
    const row = document.querySelector(`#jobs tr[data-job-id="${CSS.escape(id)}"]`);
    if (row && isCurrent()) drawCurve(row.querySelector('td.curve'), curves.get(id));
  }));
}

// --- The live stream of one sweep -----------------------------------------------------------

// What the sweep page shows while it follows /api/v1/sweeps/<id>/events. The first event is
// the whole sweep; each later one what one commit changed (the sweep's counts and state, and
// the rows of the jobs that changed). EventSource reconnects by itself after a lost
// connection, sending the last event's id, and the coordinator replays only what was missed.
const live = { sweepId: null, source: null, sweep: null, jobs: [], index: new Map(),
  lost: false, refused: false };

const ENDED = ['SWEEP_STATE_COMPLETED', 'SWEEP_STATE_FAILED', 'SWEEP_STATE_CANCELLED'];

function applyEvent(message) {
  const { sweep = {}, jobs = [], delta = false } = message;
  if (!delta) {
    live.sweep = sweep;
    live.jobs = jobs;
    live.index = new Map(jobs.map((job, i) => [job.spec?.jobId, i]));
  } else if (live.sweep) {
    // A delta leaves out the spec, which never changes.
    live.sweep = { ...live.sweep, state: sweep.state, counts: sweep.counts || {} };
    for (const job of jobs) {
      const i = live.index.get(job.spec?.jobId);
      if (i === undefined) {
        live.index.set(job.spec?.jobId, live.jobs.length);
        live.jobs.push(job);
      } else {
        live.jobs[i] = job;
      }
    }
  }
  // An ended sweep changes no more; closing keeps EventSource from reconnecting for nothing.
  if (ENDED.includes(live.sweep?.state)) stopFollowing();
}

function stopFollowing() {
  live.source?.close();
  live.source = null;
}

// Follows `sweepId`'s stream, or none when it is null.
function follow(sweepId) {
  if (live.sweepId === sweepId) return;
  stopFollowing();
  // ?poll=1 polls instead: a headless browser's virtual clock stands still while a request is
  // open, and an event stream stays open for as long as the sweep runs.
  const poll = new URLSearchParams(location.search).has('poll');
  Object.assign(live, { sweepId, sweep: null, jobs: [], index: new Map(), lost: false,
    refused: poll || typeof ReadableStream !== 'function' });
  if (sweepId === null || live.refused) return;
  const source = new TokenEventSource(`/api/v1/sweeps/${enc(sweepId)}/events`, apiHeaders);
  live.source = source;
  source.onmessage = (event) => {
    if (live.source !== source) return;
    live.lost = false;
    applyEvent(JSON.parse(event.data));
  };
  source.onerror = () => {
    if (live.source !== source) return;
    // CONNECTING: the connection dropped and EventSource retries. CLOSED: the coordinator
    // answered with an error (no such sweep, too many streams): poll the JSON API instead.
    live.lost = source.readyState === TokenEventSource.CONNECTING;
    if (source.readyState === TokenEventSource.CLOSED) {
      live.refused = true;
      live.source = null;
    }
  };
}

// The sweep and its first jobs: from the stream when it delivered, else from the JSON API.
async function sweepData(sweepId) {
  if (!live.refused) {
    if (live.lost) throw new Unreachable('the event stream is reconnecting');
    if (live.sweep) return { sweep: live.sweep, jobs: live.jobs, source: 'stream' };
  }
  const [sweep, { jobs = [] }] = await Promise.all([
    getJson(`/api/v1/sweeps/${enc(sweepId)}`),
    getJson(`/api/v1/sweeps/${enc(sweepId)}/jobs?page_size=${MAX_ROWS}`),
  ]);
  return { sweep, jobs, source: 'poll' };
}

async function refreshSweep(sweepId, isCurrent) {
  follow(sweepId);
  const { sweep, jobs: allJobs, source } = await sweepData(sweepId);
  if (!isCurrent() || !sweep.id) return;
  setAttr($('sweep-view'), 'data-source', source);
  const jobs = allJobs.slice(0, MAX_ROWS);
  document.title = `Ablate · ${sweep.id}`;
  setText($('sweep-id'), sweep.id);
  setBadge($('sweep-state'), stateName(sweep.state, 'SWEEP_STATE_'));
  setText($('sweep-description'), sweep.spec?.description || '');
  const counts = sweep.counts || {};
  const parts = ['succeeded', 'failed', 'cancelled', 'running', 'assigned', 'pending']
    .filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`);
  setText($('sweep-summary'), `${doneOf(counts)}/${counts.total || 0} done · ${parts.join(', ')}`);
  const total = counts.total || 0;
  $('jobs-more').hidden = total <= jobs.length;
  setText($('jobs-more'), `showing the first ${jobs.length} of ${total} jobs`);

  const dimensions = (sweep.spec?.grid || []).map((d) => d.name);
  const table = $('jobs');
  const columns = jobColumns(dimensions);
  if (table.dataset.columns !== columns.join('|')) {
    // Another grid: rebuild the header, and the rows, whose cells follow it.
    table.dataset.columns = columns.join('|');
    table.tHead.rows[0].replaceChildren(...columns.map((c, i) => Object.assign(
      document.createElement('th'),
      { textContent: c, className: i > 0 && i <= dimensions.length ? 'dim' : '' })));
    table.tBodies[0].replaceChildren();
  }
  syncRows(table.tBodies[0], jobs, 'jobId', (j) => j.spec?.jobId || '',
    () => createJobRow(dimensions), (row, job) => updateJobRow(row, job, sweep, dimensions));
  await refreshCurves(jobs, isCurrent);
}

// Empties the sweep view when it is about to show another sweep than the one it holds, so the
// previous sweep's jobs never appear under the new id.
function showSweepShell(sweepId) {
  const view = $('sweep-view');
  if (view.dataset.sweepId === sweepId) return;
  view.dataset.sweepId = sweepId;
  setText($('sweep-id'), sweepId);
  for (const id of ['sweep-state', 'sweep-description', 'sweep-summary']) setText($(id), '');
  $('jobs').tBodies[0].replaceChildren();
}

// --- Header, routing and the refresh loop ------------------------------------------------

async function refreshWorkers() {
  const { workers = [] } = await getJson('/api/v1/workers');
  const n = workers.filter((w) => w.connected).length;
  setAttr($('workers'), 'data-count', String(n));
  setText($('workers'), `${n} worker${n === 1 ? '' : 's'} connected`);
}

function route() {
  const match = location.hash.match(/^#\/sweeps\/([^/]+)$/);
  return match ? { sweepId: decodeURIComponent(match[1]) } : {};
}

let generation = 0;
let timer = 0;

// One refresh of the header and the routed view, then the next one a second later. A route
// change starts a new refresh at once; the older one then neither renders nor reschedules.
async function refresh() {
  clearTimeout(timer);
  const mine = ++generation;
  const isCurrent = () => mine === generation;
  const { sweepId } = route();
  $('sweeps-view').hidden = sweepId !== undefined;
  $('sweep-view').hidden = sweepId === undefined;
  if (sweepId !== undefined) showSweepShell(sweepId);
  else follow(null);
  let reachable = true;
  let error = '';
  try {
    await Promise.all([
      refreshWorkers(),
      sweepId === undefined ? refreshSweeps(isCurrent) : refreshSweep(sweepId, isCurrent),
    ]);
  } catch (e) {
    if (e instanceof Unreachable) reachable = false;
    else error = e.message;
  }
  if (!isCurrent()) return;
  // While unreachable, the last good data stays on screen under the banner.
  $('connection').hidden = reachable;
  document.body.classList.toggle('offline', !reachable);
  setText($('error'), error);
  $('error').hidden = !error;
  timer = setTimeout(refresh, POLL_MS);
}

// The header's token field: saving a token stores it and refreshes at once.
$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token-input').value.trim();
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
  $('token-input').value = '';
  follow(null);
  refresh();
});

takeTokenFromAddress();
window.addEventListener('hashchange', () => {
  takeTokenFromAddress();
  refresh();
});
refresh();
