// @vitest-environment jsdom
import { GRID_METRICS, fetchLastValues, valueOf } from './metrics';

describe('the grid\'s metrics', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('say where a series\' one last logged point stands for the job', () => {
    const labels = GRID_METRICS.filter((m) => m.series).map((m) => m.label);
    expect(labels).toEqual(['tokens/s (last logged)', 'peak memory (last logged)',
      'MFU (last logged)']);
    expect(GRID_METRICS.filter((m) => !m.series).map((m) => m.label))
      .not.toContain(expect.stringContaining('last logged'));
  });

  it('read a series\' last point, not its mean', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ metrics: [
      { name: 'train/tokens_per_sec', steps: ['10', '20'], values: [1000, 400] }] }))));
    const job = { spec: { jobId: 'j' }, state: 'JOB_STATE_SUCCEEDED' as const, step: '20' };
    await fetchLastValues([job], () => {});
    const tokens = GRID_METRICS.find((m) => m.id === 'tokens_per_sec');
    expect(tokens && valueOf(tokens, job)).toBe(400);
  });
});
