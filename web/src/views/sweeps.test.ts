import { elapsedSeconds, ended, estimateLeft } from './sweeps';

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
