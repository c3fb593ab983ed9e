// @vitest-environment jsdom
import { describe, expect, it } from 'vitest';

// uPlot asks for matchMedia as it loads, which jsdom lacks.
window.matchMedia = (() => ({ addEventListener() {}, removeEventListener() {} })) as never;
const { lonePoint } = await import('./chart');

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
