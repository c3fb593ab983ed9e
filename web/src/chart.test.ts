// @vitest-environment jsdom
import { describe, expect, it } from 'vitest';

// uPlot asks for matchMedia as it loads, which jsdom lacks.
window.matchMedia = (() => ({ addEventListener() {}, removeEventListener() {} })) as never;
const { lonePoint, xRange } = await import('./chart');

describe('lonePoint', () => {
  it('marks a series\' only point, which no line can join', () => {
    expect(lonePoint([null, 2.5, null])).toEqual([1]);
    expect(lonePoint([3.1])).toEqual([0]);
    expect(lonePoint([NaN, undefined, 4])).toEqual([2]);
    // Lines show two points or more; nothing to mark in an empty series.
    expect(lonePoint([1, null, 2])).toBeNull();
    expect(lonePoint([null, null])).toBeNull();
  });
});

describe('xRange', () => {
  it('fits one step evaluated by every job, where uPlot would run from 0 to twice it', () => {
    expect(xRange([300], 0, 600, false)).toEqual([285, 315]);
    expect(xRange([0], -1, 1, false)).toEqual([-1, 1]);
    // Seconds since the epoch: a minute either side, not a day.
    expect(xRange([1.7e9], 1.7e9, 1.7e9 + 86400, true)).toEqual([1.7e9 - 60, 1.7e9 + 60]);
    // Several x values: the data's own range, or the reader's zoom.
    expect(xRange([10, 20, 300], 10, 300, false)).toEqual([10, 300]);
    expect(xRange([10, 20, 300], 15, 40, false)).toEqual([15, 40]);
  });
});
