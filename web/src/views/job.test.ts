// @vitest-environment jsdom
import type { Attempt, Job } from '../gen/ablate/v1/job';

// uPlot (the job's curves) asks for matchMedia as it loads, which jsdom lacks.
window.matchMedia = (() => ({ addEventListener() {}, removeEventListener() {} })) as never;
const { jobView } = await import('./job');

let up = true;

// The job page of `job`, which has no metric point, whose log (of attempt id 7) holds `lines`,
// once drawn. Asked for by id, attempt 3's log holds one line, any other's none.
async function page(job: Job, lines: string[], attempts: Attempt[] = []):
  Promise<{ el: HTMLElement; dispose: () => void }> {
  vi.stubGlobal('fetch', vi.fn(async (url: string) => {
    if (!up) throw new TypeError('connection refused');
    const attempt = /\/log\?attempt_id=(\d+)$/.exec(url)?.[1];
    return new Response(JSON.stringify(url.endsWith('/log') ? { lines, attemptId: '7' } :
      attempt === '3' ? { lines: ['attempt 3 ended'], attemptId: '3' } : attempt ? {} :
        url.endsWith('/whoami') ? { role: 'viewer' } : { job, attempts, metrics: [] }));
  }));
  const view = jobView('j');
  document.body.append(view.el);
  await vi.waitFor(() => expect(view.el.querySelector('#job-state')).not.toBeNull());
  await vi.waitFor(() => expect(view.el.querySelector('#job-log-caption')?.textContent)
    .not.toBe(''));
  return view;
}

const text = (el: HTMLElement, selector: string) => el.querySelector(selector)?.textContent;

describe('the job page', () => {
  beforeEach(() => {
    up = true;
    document.body.innerHTML = '<span id="connection"></span>';
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
    document.body.replaceChildren();
  });

  it('says why a job that never started has no curves and no provenance', async () => {
    const { el, dispose } = await page({ spec: { jobId: 'j', config: { steps: 200 } },
      state: 'JOB_STATE_FAILED', step: '0', message: 'not started: no dataset' }, ['no dataset']);
    dispose();
    expect(text(el, '#job-chart-empty')).toBe(
      'No metrics: the job ended before reporting any (it never started training).');
    expect((el.querySelector('#job-chart') as HTMLElement).hidden).toBe(true);
    expect(el.querySelector('#job-chart canvas')).toBeNull();
    expect(text(el, '#job-provenance')).toMatch(/^None recorded: /);
    // One line of log, in the singular.
    expect(text(el, '#job-log-caption')).toMatch(/^The last line of rank 0's log, /);
  });

  it('numbers its attempts as the job counts them, beside the ids its worker uses', async () => {
    const failed = (id: string, reason: string): Attempt => ({ id, jobId: 'j', workerId: 'w1',
      state: 'ATTEMPT_STATE_FAILED', exit: { exitCode: 0, signal: 0, reason } });
    const outside = 'not started: dataset /x is outside this worker\'s --data-root (/data)';
    const { el, dispose } = await page({ spec: { jobId: 'j', sweepId: 's' },
      state: 'JOB_STATE_FAILED', step: '0', message: outside }, ['no dataset'],
    [failed('7', outside), failed('3', outside)]);
    dispose();
    const rows = [...el.querySelectorAll('#attempts tbody tr')].map((tr) =>
      [...tr.querySelectorAll('td')].slice(0, 2).map((td) => td.textContent));
    expect(rows).toEqual([['2', '7'], ['1', '3']]);
    expect(text(el, '#job-log-caption')).toMatch(/^The last line of rank 0's log, attempt 2 /);
    expect(text(el, '#job-log-caption')).toContain('attempt 2 (id 7), received ');
    // Its last attempt failed as any other would: the Retry beside says so.
    expect(el.querySelector('button[data-action="retry"]')).not.toBeNull();
    expect(text(el, '#job-retry-warning')).toMatch(/^ Its last attempt failed permanently: /);
  });

  it('shows an earlier attempt\'s log, and says where one the coordinator dropped is',
    async () => {
      const ended = (id: string): Attempt => ({ id, jobId: 'j', workerId: 'w1',
        state: 'ATTEMPT_STATE_FAILED' });
      const refused: Attempt = { ...ended('5'), neverStarted: true,
        exit: { exitCode: 0, signal: 0, reason: 'not started: no free slot' } };
      const { el, dispose } = await page({ spec: { jobId: 'j' }, state: 'JOB_STATE_FAILED',
        step: '10', currentAttemptId: '7' }, ['last'], [ended('3'),
        { ...ended('4'), folder: '/runs/w1/j/attempt-4/' }, refused, ended('7')]);
      const picker = el.querySelector('#job-log-attempt') as HTMLSelectElement;
      // The newest first; the refused attempt wrote no log, so it is not offered.
      expect([...picker.options].map((o) => o.textContent)).toEqual(['newest',
        'attempt 4 (id 7)', 'attempt 2 (id 4)', 'attempt 1 (id 3)']);
      picker.value = '3';
      picker.dispatchEvent(new Event('change'));
      await vi.waitFor(() => expect(text(el, '#job-log')).toBe('attempt 3 ended'));
      expect(text(el, '#job-log-caption')).toMatch(
        /^The last line of rank 0's log, attempt 1 \(id 3\), received /);
      picker.value = '4';
      picker.dispatchEvent(new Event('change'));
      await vi.waitFor(() => expect(text(el, '#job-log-caption')).toBe(
        'The coordinator holds no line of attempt 2 (id 4): it keeps the newest attempt\'s and ' +
        'the 8 newest ended ones\'. Its whole log is trainer.log in /runs/w1/j/attempt-4/ on ' +
        'worker w1.'));
      expect((el.querySelector('#job-log') as HTMLElement).hidden).toBe(true);
      dispose();
    });

  it('counts its attempts as max_attempts does, and says why one never started', async () => {
    const refused: Attempt = { id: '9', jobId: 'j', workerId: 'w1', state: 'ATTEMPT_STATE_LOST',
      neverStarted: true, exit: { exitCode: 0, signal: 0, reason: 'not started: no free slot' } };
    const { el, dispose } = await page({ spec: { jobId: 'j' }, state: 'JOB_STATE_PENDING',
      step: '0', attempts: 2, maxAttempts: 3, uncountedAttempts: 1, currentAttemptId: '9' }, [],
    [{ id: '4', jobId: 'j', state: 'ATTEMPT_STATE_FAILED' }, refused]);
    dispose();
    expect(text(el, '.job-head')).toContain(' · attempts 1/3 (+1 not counted)');
    expect(text(el, '#job-log-caption')).toBe(
      'No log: attempt 2 (id 9) never started its trainer: no free slot');
  });

  it('shows a running job\'s last eval loss as such, and waits for its first points', async () => {
    const { el, dispose } = await page({ spec: { jobId: 'j', config: { steps: 200 } },
      state: 'JOB_STATE_RUNNING', step: '0', lastEvalLoss: 2.34567 }, ['a', 'b']);
    dispose();
    expect(text(el, '.job-head')).toMatch(/ · last eval loss 2\.346 · /);
    expect(text(el, '#job-chart-empty')).toMatch(/^No metrics yet: /);
    expect(text(el, '#job-log-caption')).toMatch(/^The last 2 lines of rank 0's log, /);
  });

  it('marks a job an update of its sweep dropped', async () => {
    const job = { spec: { jobId: 'j' }, state: 'JOB_STATE_SUCCEEDED' as const, step: '10',
      finalEvalLoss: 2 };
    const kept = await page(job, ['done']);
    kept.dispose();
    expect(kept.el.querySelector('#job-dropped')).toBeNull();
    const { el, dispose } = await page({ ...job, dropped: true }, ['done']);
    dispose();
    expect(text(el, '#job-dropped')).toBe('dropped by an update');
    expect(el.querySelector('#job-dropped')?.getAttribute('title')).toMatch(/leave it out$/);
  });

  it('tells a lost connection after its job ended and there is nothing left to fetch',
    async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldAdvanceTime: true });
      const { dispose } = await page({ spec: { jobId: 'j' }, state: 'JOB_STATE_SUCCEEDED',
        step: '10', finalEvalLoss: 2 }, ['done']);
      const state = () => document.getElementById('connection')?.dataset.state;
      // The log's last refreshes after the end, then only the check that the coordinator answers.
      await vi.advanceTimersByTimeAsync(10000);
      expect(state()).toBe('live');
      up = false;
      await vi.advanceTimersByTimeAsync(2000);
      await vi.waitFor(() => expect(state()).toBe('reconnecting'));
      dispose();
    });
});
