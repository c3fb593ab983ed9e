import { paretoFront, smooth } from './pareto';

describe('paretoFront', () => {
  it('keeps the points nothing beats on both cost and loss', () => {
    const front = paretoFront([
      { x: 1, y: 3, id: 'a' }, { x: 2, y: 2.5, id: 'b' }, { x: 2.5, y: 2.8, id: 'c' },
      { x: 3, y: 2, id: 'd' }, { x: 4, y: 2.1, id: 'e' }, { x: NaN, y: 1, id: 'nan' },
    ]);
    expect(front.map((p) => p.id)).toEqual(['a', 'b', 'd']);
  });
});

describe('smooth', () => {
  it('is the identity at weight 0 and debiased at the start', () => {
    expect(smooth([1, 2, 3], 0)).toEqual([1, 2, 3]);
    const s = smooth([2, 2, 2], 0.9);
    s.forEach((v) => expect(v).toBeCloseTo(2, 10));
    expect(smooth([1, null, 3], 0.5)[1]).toBeNull();
  });
});
