// @vitest-environment jsdom
import { SweepModel } from '../sweep_model';

// uPlot (the Curves tab's) asks for matchMedia as it loads, which jsdom lacks.
window.matchMedia = (() => ({ addEventListener() {}, removeEventListener() {} })) as never;
const { sweepView, tabOf, unknownTabView } = await import('./sweep');

const model = new SweepModel();
const follow = vi.fn();
let notify: () => void = () => {};

vi.mock('../app', async (original) => ({ ...await original<typeof import('../app')>(),
  sweepSession: () => ({ sweepId: 's', model, missing: '', follow,
    listen: (l: () => void) => {
      notify = l;
      l();
      return () => true;
    } }) }));

const offered = (el: HTMLElement) =>
  [...el.querySelectorAll('button[data-action]')].map((b) => b.textContent);

describe('a sweep\'s actions', () => {
  it('offers to retry its failed and cancelled jobs only while it has some', () => {
    model.reset({ id: 's', state: 'SWEEP_STATE_ACTIVE', counts: { total: 4, failed: 1,
      running: 3 } }, []);
    const { el, dispose } = sweepView('s', 'grid');
    expect(offered(el)).toEqual(['Cancel', 'Retry failed']);
    model.reset({ id: 's', state: 'SWEEP_STATE_CANCELLED', counts: { total: 4, failed: 1,
      cancelled: 3 } }, []);
    notify();
    expect(offered(el)).toEqual(['Retry failed', 'Retry cancelled']);
    model.reset({ id: 's', state: 'SWEEP_STATE_COMPLETED', counts: { total: 4,
      succeeded: 4 } }, []);
    notify();
    expect(offered(el)).toEqual([]);
    dispose();
  });

  it('counts the jobs an update dropped apart, and offers no retry of them', () => {
    model.reset({ id: 's', state: 'SWEEP_STATE_COMPLETED', counts: { total: 2, succeeded: 2,
      dropped: 2 } }, [{ state: 'JOB_STATE_SUCCEEDED' }, { state: 'JOB_STATE_SUCCEEDED' },
      { state: 'JOB_STATE_SUCCEEDED', dropped: true },
      { state: 'JOB_STATE_CANCELLED', dropped: true }]);
    const { el, dispose } = sweepView('s', 'grid');
    expect(el.querySelector('#sweep-summary')?.textContent).toBe('2/2 ended · 2 succeeded · ' +
      '2 jobs an update dropped, not counted');
    expect(offered(el)).toEqual([]);
    model.reset({ id: 's', state: 'SWEEP_STATE_ACTIVE', counts: { total: 2, succeeded: 2,
      dropped: 1, droppedLive: 1 } }, []);
    notify();
    expect(el.querySelector('#sweep-summary')?.textContent).toBe('2/2 ended · 2 succeeded · ' +
      '1 job an update dropped, not counted (1 of them not ended)');
    expect(offered(el)).toEqual(['Cancel']);
    dispose();
  });

  it('says what a retry came to, and follows the jobs it requeued', async () => {
    vi.stubGlobal('confirm', () => true);
    vi.stubGlobal('fetch', vi.fn(async () =>
      new Response(JSON.stringify({ requeuedJobIds: ['s-1'] }), { status: 200 })));
    model.reset({ id: 's', state: 'SWEEP_STATE_COMPLETED', counts: { total: 2, failed: 1,
      succeeded: 1 } }, []);
    const { el, dispose } = sweepView('s', 'grid');
    (el.querySelector('button[data-action="retry-failed"]') as HTMLButtonElement).click();
    await new Promise((r) => setTimeout(r, 0));
    dispose();
    vi.unstubAllGlobals();
    expect(el.querySelector('#sweep-action-result')?.textContent).toBe('requeued 1 job');
    expect(follow).toHaveBeenCalled();
  });
});

describe('a sweep\'s address', () => {
  it('names one of its tabs, the Grid where it names none', () => {
    expect(tabOf(undefined)).toBe('grid');
    expect(tabOf('cost')).toBe('cost');
    expect(tabOf('bogus')).toBeNull();
  });

  it('naming no tab says so, and links the sweep\'s views', () => {
    const { el } = unknownTabView('s 1', 'bogus');
    expect(el.dataset.view).toBe('not-found');
    expect(el.querySelector('#not-found')?.textContent).toBe(
      'No view bogus of sweep s 1: its views are Grid, Curves and Cost.');
    expect([...el.querySelectorAll('#not-found a')].map((a) => a.getAttribute('href')))
      .toEqual(['#/sweeps/s%201/grid', '#/sweeps/s%201/curves', '#/sweeps/s%201/cost']);
  });
});
