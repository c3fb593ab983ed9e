// @vitest-environment jsdom
import { costAxis, deviceHours, scatterSvg } from './cost';

const cpu = { spec: { config: { gpus: 0 } } };
const gpu = { spec: { config: { gpus: 2 } } };

// The x axis' tick labels of a scatter.
function ticks(svg: string): string[] {
  const div = document.createElement('div');
  div.innerHTML = svg;
  return [...div.querySelectorAll('text[text-anchor="middle"]')].map((t) => t.textContent ?? '')
    .filter((t) => t !== 'final eval loss');
}

describe('the cost axis', () => {
  it('counts a CPU job as one device, and says device-hours unless every job has a GPU', () => {
    const attempts = [{ startedAt: '2026-01-01T00:00:00Z', endedAt: '2026-01-01T00:30:00Z' }];
    expect(deviceHours({ job: cpu, attempts })).toBe(0.5);
    expect(deviceHours({ job: gpu, attempts })).toBe(1);
    expect(costAxis([1, 2], [gpu, gpu]).label).toBe('GPU-hours');
    expect(costAxis([1, 2], [gpu, cpu]).label).toBe('device-hours');
  });

  it('writes one format in a unit the sweep reaches, its ticks never alike', () => {
    // A small sweep: 10.3 to 10.6 device-seconds, which "0.0029 GPU-h" wrote three times.
    const hours = [10.33 / 3600, 10.62 / 3600];
    const axis = costAxis(hours, [cpu]);
    expect(axis.label).toBe('device-seconds');
    const points = hours.map((x, i) => ({ x, y: 2 + i, id: `c${i}` }));
    expect(ticks(scatterSvg(points, axis.label, axis.format, 'c', true))).toEqual(
      ['10.3 device-s', '10.5 device-s', '10.6 device-s', 'device-seconds']);
    // Another sweep's costs, in the same form (not 8.13e-4 here and 0.002 there).
    expect(costAxis([8.13e-4], [cpu]).format(8.13e-4)).toBe('2.93 device-s');
    expect(costAxis([0.5, 1.5], [gpu]).format(1.5)).toBe('1.5 GPU-h');
    expect(costAxis([0.05, 0.1], [gpu]).format(0.05)).toBe('3.0 GPU-min');
  });

  it('draws one tick where every point costs the same', () => {
    const axis = costAxis([0.5], [gpu]);
    const points = [{ x: 0.5, y: 2, id: 'a' }, { x: 0.5, y: 3, id: 'b' }];
    expect(ticks(scatterSvg(points, axis.label, axis.format, 'c', true))).toEqual(
      ['30.0 GPU-min', 'GPU-minutes']);
  });
});
