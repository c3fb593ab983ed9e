// @vitest-environment jsdom
import { backoffText, timelineSvg, workersView } from './workers';

const at = (iso: string) => Date.parse(iso) / 1000;
const local = (t: number) => {
  const d = new Date(t * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return [`${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`];
};

describe('the attempts timeline', () => {
  it('runs from the first start to the last end on a time axis', () => {
    const div = document.createElement('div');
    div.innerHTML = timelineSvg([
      { id: '1', jobId: 'j1', workerId: 'w1', state: 'ATTEMPT_STATE_SUCCEEDED' as never,
        startedAt: '2025-03-01T10:00:00Z', endedAt: '2025-03-01T10:30:00Z' },
      { id: '2', jobId: 'j2', workerId: 'w2', state: 'ATTEMPT_STATE_FAILED' as never,
        startedAt: '2025-03-01T10:20:00Z', endedAt: '2025-03-01T11:00:00Z' },
    ], at('2025-03-02T12:00:00Z'));
    const ticks = [...div.querySelectorAll('.axis text.tick')].map((t) => t.textContent);
    // An ended sweep's axis ends at its last end, not now; the first tick names the date.
    expect(ticks).toHaveLength(5);
    expect(ticks[0]).toBe(local(at('2025-03-01T10:00:00Z')).join(' '));
    expect(ticks[2]).toBe(local(at('2025-03-01T10:30:00Z'))[1]);
    expect(ticks[4]).toBe(local(at('2025-03-01T11:00:00Z'))[1]);
    // The last bar ends at the axis' end.
    const bar = div.querySelectorAll('rect')[1];
    expect(Number(bar.getAttribute('x')) + Number(bar.getAttribute('width'))).toBe(890);
  });

  it('names each attempt as its job\'s page does: its count in the job, and its id', () => {
    const div = document.createElement('div');
    const attempt = (id: string, jobId: string) => ({ id, jobId, workerId: 'w1',
      state: 'ATTEMPT_STATE_FAILED' as never, startedAt: '2025-03-01T10:00:00Z',
      endedAt: '2025-03-01T10:30:00Z' });
    div.innerHTML = timelineSvg([attempt('19', 'a'), attempt('15', 'b'), attempt('9', 'a')], 0);
    expect([...div.querySelectorAll('rect title')].map((t) => t.textContent)).toEqual([
      'job a, attempt 2 (id 19): failed', 'job b, attempt 1 (id 15): failed',
      'job a, attempt 1 (id 9): failed']);
  });

  it('names the date again only where a day begins', () => {
    const div = document.createElement('div');
    // Local times (no zone): 22:00 to 02:00 the next day, a tick an hour.
    div.innerHTML = timelineSvg([{ id: '1', jobId: 'j1', workerId: 'w1',
      startedAt: new Date('2025-03-01T22:00:00').toISOString(),
      endedAt: new Date('2025-03-02T02:00:00').toISOString() }], 0);
    expect([...div.querySelectorAll('.axis text.tick')].map((t) => t.textContent)).toEqual([
      '2025-03-01 22:00:00', '23:00:00', '2025-03-02 00:00:00', '01:00:00', '02:00:00']);
  });
});

describe('a worker backing off', () => {
  it('says why it takes no work and when it is tried again', () => {
    const backoff = { reason: 'cannot run /opt/ablate-train: Permission denied', failures: 4,
      retryAt: '2025-03-01T10:00:08Z' };
    expect(backoffText(backoff, Date.parse('2025-03-01T10:00:00.400Z'))).toBe(
      'not taking work: cannot run /opt/ablate-train: Permission denied (4 failed starts in a ' +
      'row); next try in 8 s');
    expect(backoffText({ ...backoff, failures: 1 }, Date.parse('2025-03-01T10:00:09Z'))).toBe(
      'not taking work: cannot run /opt/ablate-train: Permission denied; trying one job until ' +
      'a trainer starts there');
  });
});

describe('the workers view', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('draws the newest sweep\'s attempts, and another sweep\'s when picked', async () => {
    const attempt = (sweep: string) => ({ attempts: [{ id: '1', jobId: `${sweep}-0`,
      workerId: 'w', state: 'ATTEMPT_STATE_SUCCEEDED', startedAt: '2025-03-01T10:00:00Z',
      endedAt: '2025-03-01T10:10:00Z' }] });
    const answers: [RegExp, (m: RegExpMatchArray) => object][] = [
      [/^\/api\/v1\/workers$/, () => ({ workers: [] })],
      [/^\/api\/v1\/sweeps$/, () => ({ sweeps: [{ id: 'new' }, { id: 'old' }] })],
      [/^\/api\/v1\/sweeps\/(\w+)\/jobs/, (m) => ({ jobs: [{ spec: { jobId: `${m[1]}-0` },
        attempts: 1 }] })],
      [/^\/api\/v1\/jobs\/(\w+)-0/, (m) => attempt(m[1])],
    ];
    vi.stubGlobal('fetch', vi.fn(async (url: string) => {
      for (const [re, body] of answers) {
        const m = url.match(re);
        if (m) return new Response(JSON.stringify(body(m)), { status: 200 });
      }
      return new Response('{}', { status: 404 });
    }));
    const { el, dispose } = workersView();
    // The view fetches in the background: wait for what it draws, not for a fixed time.
    const caption = () => el.querySelector('#timeline-caption')?.textContent ?? '';
    await vi.waitFor(() => expect(caption()).toMatch(/^Attempts of sweep new /), { timeout: 5000 });
    const picker = el.querySelector('#timeline-sweep') as HTMLSelectElement;
    expect([...picker.options].map((o) => o.value)).toEqual(['new', 'old']);
    picker.value = 'old';
    picker.dispatchEvent(new Event('change'));
    await vi.waitFor(() => expect(caption()).toMatch(/^Attempts of sweep old /), { timeout: 5000 });
    dispose();
    expect(el.querySelector('#timeline rect')?.getAttribute('data-job-id')).toBe('old-0');
  });
});
