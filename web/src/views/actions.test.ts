// @vitest-environment jsdom
import { setConnection } from '../app';
import {
  cancelButton, loadRole, retryButton, retryOutcome, retryQuestion, retrySweepButton,
} from './actions';

const tick = () => new Promise((r) => setTimeout(r, 0));
const answer = (body: object) => vi.fn(async (..._: unknown[]) =>
  new Response(JSON.stringify(body), { status: 200 }));

describe('actions', () => {
  beforeEach(() => {
    document.body.innerHTML = '<span id="connection"></span><span id="role" hidden></span>' +
      '<p id="error" hidden></p>';
    setConnection('live');
  });
  afterEach(() => vi.unstubAllGlobals());

  it('asks about one job in a job\'s words, and about a sweep in a sweep\'s', () => {
    const confirm = vi.fn(() => false);
    vi.stubGlobal('confirm', confirm);
    cancelButton('j1', 'job').click();
    cancelButton('s1', 'sweep').click();
    expect(confirm.mock.calls[0]).toEqual(
      ['Cancel job j1? It stops if it runs, and never starts if it waits.']);
    expect(confirm.mock.calls[1]).toEqual(
      ['Cancel sweep s1? Its running jobs stop and pending ones never start.']);
  });

  it('puts what a cancel did in the button\'s place, as a sentence', async () => {
    vi.stubGlobal('confirm', () => true);
    vi.stubGlobal('fetch', answer({ cancelledJobIds: ['j1'] }));
    const job = cancelButton('j1', 'job');
    document.body.append(job);
    job.click();
    await tick();
    expect(job.isConnected).toBe(false);
    expect(document.querySelector('[role="status"]')?.textContent).toBe('Cancelled.');
    vi.stubGlobal('fetch', answer({ cancelledJobIds: ['s-1', 's-2'] }));
    const sweep = cancelButton('s', 'sweep');
    document.body.replaceChildren(sweep);
    sweep.click();
    await tick();
    expect(document.body.textContent).toBe('Cancelled 2 jobs.');
  });

  it('warns before retrying a job whose last attempt failed permanently', async () => {
    expect(retryQuestion('j1')).toBe('Retry job j1? It runs again as a new attempt.');
    const confirm = vi.fn(() => false);
    vi.stubGlobal('confirm', confirm);
    retryButton('s', 'j1', 'exited with code 3: dataset /d: no directory /d').click();
    expect(confirm.mock.calls[0]).toEqual(['Retry job j1? It runs again as a new attempt. ' +
      'Its last attempt failed permanently (exited with code 3: dataset /d: no directory /d): ' +
      'unless that cause was fixed, the retry will most likely fail the same way.']);
  });

  it('marks the page with the newest token\'s role, whichever answer comes first', async () => {
    const answers: ((role: string) => void)[] = [];
    vi.stubGlobal('fetch', vi.fn(() => new Promise((resolve) => answers.push((role) =>
      resolve(new Response(JSON.stringify({ role }), { status: 200 }))))));
    const first = loadRole();
    const second = loadRole();
    answers[1]('viewer');
    await second;
    answers[0]('user');
    await first;
    expect(document.body.dataset.role).toBe('viewer');
    // The header names it too.
    expect(document.getElementById('role')?.textContent).toBe('role: viewer');
    expect(document.getElementById('role')?.hidden).toBe(false);
  });

  it('names no role where the token is refused', async () => {
    vi.stubGlobal('fetch', vi.fn(async () =>
      new Response(JSON.stringify({ error: 'no token' }), { status: 401 })));
    await loadRole();
    expect(document.body.dataset.role).toBe('');
    expect(document.getElementById('role')?.hidden).toBe(true);
  });

  it('retries a sweep\'s failed jobs by state, and says what came of it', async () => {
    const confirm = vi.fn(() => true);
    vi.stubGlobal('confirm', confirm);
    const fetch = answer({ requeuedJobIds: ['s-00001', 's-00004'], droppedLeft: 1 });
    vi.stubGlobal('fetch', fetch);
    const reports: string[] = [];
    const button = retrySweepButton('s', 'failed', 3, (r) => reports.push(r));
    expect(button.textContent).toBe('Retry failed');
    button.click();
    await tick();
    expect(confirm.mock.calls[0]).toEqual(
      ['Retry the 3 failed jobs of sweep s? Each runs again as a new attempt.']);
    expect(fetch.mock.calls[0][0]).toBe('/api/v1/sweeps/s/retry');
    expect((fetch.mock.calls[0][1] as RequestInit).body).toBe(
      JSON.stringify({ states: ['JOB_STATE_FAILED'] }));
    expect(reports).toEqual(['', 'requeued 2 jobs; left 1 job an update dropped from the ' +
      'sweep alone']);
    expect(button.disabled).toBe(true);
  });

  it('words a retry\'s refusals, and frees the button when nothing was requeued', async () => {
    expect(retryOutcome({ requeuedJobIds: ['s-1'] })).toBe('requeued 1 job');
    const refused = [{ jobId: 's-2', reason: 'RUNNING: it has not ended' }];
    expect(retryOutcome({ refused })).toBe(
      'requeued 0 jobs; refused 1 job (s-2: RUNNING: it has not ended)');
    vi.stubGlobal('confirm', () => true);
    vi.stubGlobal('fetch', answer({ refused }));
    const button = retrySweepButton('s', 'cancelled', 1, () => {});
    button.click();
    await tick();
    expect(button.disabled).toBe(false);
  });

  it('says what to do when the coordinator cannot be reached', async () => {
    vi.stubGlobal('confirm', () => true);
    vi.stubGlobal('fetch', vi.fn(async () => { throw new TypeError('Failed to fetch'); }));
    const button = cancelButton('j1', 'job');
    button.click();
    await tick();
    expect(document.querySelector('#error .error-message')?.textContent).toBe(
      'cancel j1: the coordinator cannot be reached; try again when the page is live');
    expect(button.disabled).toBe(false);
  });

  it('disables every action while the page reconnects, and not a running one after', () => {
    const idle = cancelButton('j1', 'job');
    const busy = cancelButton('j2', 'job');
    busy.dataset.busy = 'true';
    document.body.append(idle, busy);
    setConnection('reconnecting');
    expect([idle.disabled, busy.disabled]).toEqual([true, true]);
    // One made while reconnecting starts disabled.
    expect(retrySweepButton('s', 'failed', 1, () => {}).disabled).toBe(true);
    setConnection('live');
    expect([idle.disabled, busy.disabled]).toEqual([false, true]);
  });
});
