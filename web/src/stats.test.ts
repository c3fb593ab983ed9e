import { estimate, studentT975 } from './stats';

describe('estimate', () => {
  it('gives the 95% Student-t interval `ablate results` prints', () => {
    // Three seeds whose `ablate results` row reads 1.9574 [1.8349, 2.0798], std 0.0493.
    const e = estimate([2.0025452077388763, 1.9647450000047684, 1.9047718048095703]);
    expect(e.mean).toBeCloseTo(1.9574, 4);
    expect(e.std).toBeCloseTo(0.0493, 4);
    expect(e.mean - (e.half ?? 0)).toBeCloseTo(1.8349, 4);
    expect(e.mean + (e.half ?? 0)).toBeCloseTo(2.0798, 4);
    expect(estimate([2.5])).toEqual({ n: 1, mean: 2.5 });
  });

  it('reads t from the table, then from its large-sample expansion', () => {
    expect(studentT975(1)).toBe(12.706);
    expect(studentT975(30)).toBe(2.042);
    expect(studentT975(1000)).toBeCloseTo(1.9623, 3);
  });
});
