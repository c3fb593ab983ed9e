// The coordinator's JSON API (protobuf's JSON mapping of sweep_service.proto: camelCase names,
// enums by name, 64-bit integers as strings), typed by the messages generated from proto/.
// Every request carries the bearer token kept in this browser's localStorage (never a cookie,
// so other sites' pages cannot make the browser send it).
import type {
  CancelResponse,
  GetJobResponse,
  JobLog,
  ListJobsResponse,
  ListSweepsResponse,
  ListWorkersResponse,
  RetryJobsResponse,
  WhoAmIResponse,
} from './gen/ablate/v1/sweep_service';
import type { Sweep } from './gen/ablate/v1/sweep';
import type { Job, JobState } from './gen/ablate/v1/job';

const TOKEN_KEY = 'ablate.token';

// A request that got no answer from the coordinator, as opposed to an answer that is an error.
export class Unreachable extends Error {}

// A 401: no token, or one the coordinator does not know. Its message tells the page's reader
// what to do (the coordinator's own speaks to CLI users).
export class Unauthenticated extends Error {}

// A 404: the sweep or job asked for is not on this coordinator.
export class NotFound extends Error {}

export function token(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

const tokenListeners = new Set<() => void>();

// Calls `listener` whenever the token changes, however it changes: the header's field, an
// address carrying one, or another tab of this origin (whose change arrives as a storage event).
export function onTokenChange(listener: () => void): void {
  if (!tokenListeners.size) {
    window.addEventListener('storage', (event) => {
      if (event.key === TOKEN_KEY || event.key === null) for (const l of tokenListeners) l();
    });
  }
  tokenListeners.add(listener);
}

export function setToken(value: string): void {
  if (value === (token() ?? '')) return;
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
  for (const l of tokenListeners) l();
}

// Takes #token=... (or ...&token=...) out of the address into storage, as `make demo`'s link
// hands it over; the fragment never reaches a server.
export function takeTokenFromAddress(): void {
  const match = location.hash.match(/[#&]token=([^&]*)/);
  if (!match) return;
  setToken(decodeURIComponent(match[1]));
  let rest = location.hash.replace(/[#&]token=[^&]*/, '');
  if (rest && !rest.startsWith('#')) rest = `#${rest}`;
  history.replaceState(null, '', location.pathname + location.search + rest);
}

export function authHeaders(extra: Record<string, string> = {}): Record<string, string> {
  const t = token();
  return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
}

async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      cache: 'no-store',
      ...init,
      headers: authHeaders({ Accept: 'application/json', ...(init.headers as object) }),
    });
  } catch (e) {
    throw new Unreachable(String(e));
  }
  let body: { error?: string };
  try {
    body = await response.json();
  } catch {
    throw new Unreachable(`${path}: HTTP ${response.status} without a JSON body`);
  }
  const message = body.error || `HTTP ${response.status}`;
  if (response.status === 401) {
    throw new Unauthenticated(token() ? `the token was refused (${message}): enter another ` +
      'in the field above' : 'no token: enter a viewer\'s or a user\'s token in the field above');
  }
  if (response.status === 404) throw new NotFound(message);
  if (!response.ok) throw new Error(message);
  return body as T;
}

const enc = encodeURIComponent;

export const api = {
  sweeps: () => request<ListSweepsResponse>('/api/v1/sweeps'),
  sweep: (id: string) => request<Sweep>(`/api/v1/sweeps/${enc(id)}`),
  jobsPage: (id: string, pageToken = '') =>
    request<ListJobsResponse>(
      `/api/v1/sweeps/${enc(id)}/jobs?page_size=5000&page_token=${enc(pageToken)}`),
  job: (id: string, metrics: string[] = [], maxPoints = 1000) =>
    request<GetJobResponse>(
      `/api/v1/jobs/${enc(id)}?metrics=${enc(metrics.join(','))}&max_points=${maxPoints}`),
  // attemptId '' for the job's newest attempt's log.
  jobLog: (id: string, attemptId = '') => request<JobLog>(`/api/v1/jobs/${enc(id)}/log` +
    (attemptId ? `?attempt_id=${enc(attemptId)}` : '')),
  workers: () => request<ListWorkersResponse>('/api/v1/workers'),
  whoami: () => request<WhoAmIResponse>('/api/v1/whoami'),
  cancel: (id: string) =>
    request<CancelResponse>('/api/v1/cancel', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ id }),
    }),
  // Ended jobs of a sweep back to PENDING as new attempts, named or by state; each one refused
  // says why.
  retry: (sweepId: string, which: { jobIds: string[] } | { states: JobState[] }) =>
    request<RetryJobsResponse>(`/api/v1/sweeps/${enc(sweepId)}/retry`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(which),
    }),
};

// Every job of a sweep, page after page.
export async function allJobs(sweepId: string): Promise<Job[]> {
  const jobs: Job[] = [];
  let pageToken = '';
  do {
    const page = await api.jobsPage(sweepId, pageToken);
    jobs.push(...(page.jobs ?? []));
    pageToken = page.nextPageToken ?? '';
  } while (pageToken);
  return jobs;
}
