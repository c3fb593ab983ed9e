// @vitest-environment jsdom
import type { MetricSeries } from '../gen/ablate/v1/metrics';
import { varyingDimensions } from '../grid_model';

// uPlot asks for matchMedia as it loads, which jsdom lacks.
window.matchMedia = (() => ({ addEventListener() {}, removeEventListener() {} })) as never;
const { jobLabel, linesOf } = await import('./curves');

describe('curves on the FLOPs axis', () => {
  it('places each job by its FLOPs per token and marks one the coordinator could not', () => {
    const config = { batchSize: 4, contextLength: 32 };
    const jobs = [
      { spec: { jobId: 'a', cell: [{ dimension: 'model', value: 'tiny' }], config,
        trainFlopsPerToken: 1e6 } },
      { spec: { jobId: 'b', cell: [{ dimension: 'model', value: 'old' }], config } },
    ];
    const series: MetricSeries = { name: 'train/loss', steps: ['1', '2'], values: [3, 2.5],
      wallTimes: [1, 2] };
    const lines = linesOf(jobs, new Map([['a', series], ['b', series]]), null,
      { metric: 'train/loss', axis: 'flops', log: false, smoothing: 0 });
    // 128 tokens a step at 1e6 FLOPs each.
    expect(lines[0]).toEqual({ label: 'model=tiny', x: [1.28e8, 2.56e8], y: [3, 2.5] });
    expect(lines[1]).toEqual({ label: 'model=old (FLOPs unknown)', x: [], y: [] });
  });
});

describe('job labels', () => {
  it('name only the dimensions that tell jobs apart', () => {
    const job = { spec: { jobId: 'j', cell: [{ dimension: 'model', value: 'tiny' },
      { dimension: 'optimizer', value: 'adamw' },
      { dimension: 'context_length', value: '64' }] } };
    expect(jobLabel(job, new Set(['context_length']))).toBe('context_length=64');
    expect(jobLabel(job)).toBe('model=tiny optimizer=adamw context_length=64');
    // A sweep of one cell varies nothing: the whole cell.
    expect(jobLabel(job, new Set())).toBe('model=tiny optimizer=adamw context_length=64');
  });

  it('tell a cell\'s repeats apart by the seed they add to it', () => {
    const sweep = { spec: { repeats: 3, grid: [{ name: 'model', values: ['tiny'] },
      { name: 'optimizer', values: ['adamw', 'muon'] }] } };
    const repeat = (seed: string) => ({ spec: { jobId: `j${seed}`, cell: [
      { dimension: 'model', value: 'tiny' }, { dimension: 'optimizer', value: 'adamw' },
      { dimension: 'seed', value: seed }] } });
    const labels = ['1', '2', '3'].map((s) => jobLabel(repeat(s), varyingDimensions(sweep)));
    expect(labels).toEqual(['optimizer=adamw seed=1', 'optimizer=adamw seed=2',
      'optimizer=adamw seed=3']);
    expect(varyingDimensions({ spec: { ...sweep.spec, repeats: 1 } })).toEqual(
      new Set(['optimizer']));
  });
});
