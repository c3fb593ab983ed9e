import { curvePoints, flopsPerStep, xValues } from './curves_data';

describe('curvePoints', () => {
  it('appends live points after the fetched series, on the chosen axis', () => {
    const pts = curvePoints({ name: 'train/loss', steps: ['1', '2'], values: [5, 4],
      wallTimes: [10, 20] }, [
      { name: 'train/loss', step: '2', value: 4 },
      { name: 'train/loss', step: '3', value: 3, wallTime: 30 },
      { name: 'eval/loss', step: '4', value: 9 },
    ], 'train/loss');
    expect(pts.steps).toEqual([1, 2, 3]);
    expect(pts.values).toEqual([5, 4, 3]);
    const job = { spec: { config: { batchSize: 8, contextLength: 64 } } };
    expect(xValues(pts, 'tokens', job)).toEqual([512, 1024, 1536]);
    expect(xValues(pts, 'wall', job)).toEqual([10, 20, 30]);
  });

  it('puts a job on the FLOPs axis from the FLOPs per token the coordinator serves', () => {
    const pts = { steps: [1, 2, 10], walls: [] };
    // 8 sequences of 64 tokens a step at 6e6 FLOPs a token: 3.072e9 FLOPs a step.
    const job = { spec: { config: { batchSize: 8, contextLength: 64 }, trainFlopsPerToken: 6e6 } };
    expect(flopsPerStep(job)).toBe(3.072e9);
    expect(xValues(pts, 'flops', job)).toEqual([3.072e9, 6.144e9, 3.072e10]);
    // A job stored before the coordinator served it cannot be placed on that axis.
    expect(xValues(pts, 'flops', { spec: { config: { batchSize: 8, contextLength: 64 } } }))
      .toBeNull();
  });
});
