import { gpuLines, gpuRows, gpuSeriesNames, GPU_QUANTITIES } from './gpu';

const metrics = [
  { name: 'gpu/1/utilization_percent', steps: ['5', '10'], values: [40, 55], wallTimes: [100, 110] },
  { name: 'gpu/0/utilization_percent', steps: ['5', '10'], values: [90, 97], wallTimes: [100, 110] },
  { name: 'gpu/0/memory_used_bytes', steps: ['10'], values: [64 * 2 ** 30], wallTimes: [110] },
  { name: 'gpu/0/temperature_celsius', steps: ['10'], values: [61], wallTimes: [110] },
  { name: 'train/loss', steps: ['10'], values: [3], wallTimes: [110] },
  { name: 'gpu/0/fan_speed', steps: ['10'], values: [1], wallTimes: [110] },
];

describe('GPU metrics of a job', () => {
  it('names the series of each GPU', () => {
    expect(gpuSeriesNames(2)).toEqual(['gpu/0/utilization_percent', 'gpu/0/memory_used_bytes',
      'gpu/0/temperature_celsius', 'gpu/1/utilization_percent', 'gpu/1/memory_used_bytes',
      'gpu/1/temperature_celsius']);
  });

  it('keeps the latest value of each quantity per GPU, in rank order', () => {
    expect(gpuRows(metrics)).toEqual([
      { rank: 0, latest: { utilization_percent: 97, memory_used_bytes: 64 * 2 ** 30,
        temperature_celsius: 61 } },
      { rank: 1, latest: { utilization_percent: 55 } },
    ]);
    expect(GPU_QUANTITIES.memory_used_bytes.format(64 * 2 ** 30)).toBe('64.0 GiB');
    expect(GPU_QUANTITIES.temperature_celsius.format(61)).toBe('61 °C');
  });

  it('draws one line per GPU against wall time', () => {
    expect(gpuLines(metrics, 'utilization_percent')).toEqual([
      { label: 'GPU 0', x: [100, 110], y: [90, 97] },
      { label: 'GPU 1', x: [100, 110], y: [40, 55] },
    ]);
  });
});
