// @vitest-environment jsdom
import { elapsedSeconds, ended, estimateLeft, progressBar } from './sweeps';

describe('sweep progress', () => {
  it('counts ended jobs and estimates the rest at the pace so far', () => {
    const counts = { total: 10, succeeded: 3, failed: 1, running: 2, pending: 4 };
    expect(ended(counts)).toBe(4);
    // 4 jobs ended in 600 s: 150 s each, 6 left.
    expect(estimateLeft(counts, 600)).toBe(900);
    expect(estimateLeft({ total: 10, pending: 10 }, 600)).toBeUndefined();
    expect(estimateLeft({ total: 2, succeeded: 2 }, 600)).toBeUndefined();
  });
});

describe('a sweep\'s elapsed time', () => {
  const createdAt = '2025-01-01T00:00:00Z';
  const now = Date.parse('2025-01-01T02:00:00Z');
  it('runs to now while active, and to its end once ended', () => {
    expect(elapsedSeconds({ createdAt, state: 'SWEEP_STATE_ACTIVE' }, now)).toBe(7200);
    expect(elapsedSeconds({ createdAt, state: 'SWEEP_STATE_COMPLETED',
      endedAt: '2025-01-01T01:00:00Z' }, now)).toBe(3600);
    expect(elapsedSeconds({ createdAt, state: 'SWEEP_STATE_FAILED' }, now)).toBeUndefined();
  });
});

describe('the progress bar', () => {
  const segments = (html: string) => {
    const div = document.createElement('div');
    div.innerHTML = html;
    return [...div.querySelectorAll<HTMLElement>('.fill')].map((f) =>
      [f.className, f.style.width]);
  };

  it('colours jobs by outcome, so failed or cancelled ones never read as complete', () => {
    expect(segments(progressBar({ total: 4, succeeded: 2, failed: 2 }))).toEqual([
      ['fill fill-succeeded', '50%'], ['fill fill-failed', '50%']]);
    expect(segments(progressBar({ total: 2, cancelled: 2 }))).toEqual([
      ['fill fill-cancelled', '100%']]);
    // Running jobs show; pending ones leave the rest of the track empty.
    expect(segments(progressBar({ total: 4, succeeded: 1, running: 1, pending: 2 }))).toEqual([
      ['fill fill-succeeded', '25%'], ['fill fill-running', '25%']]);
    expect(progressBar({ total: 4, succeeded: 2, failed: 2 })).toContain(
      'aria-valuetext="4 of 4 ended: 2 succeeded, 2 failed"');
  });
});
