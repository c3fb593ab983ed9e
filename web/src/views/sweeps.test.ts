import { ended, estimateLeft } from './sweeps';

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
