import type { Job } from './gen/ablate/v1/job';
import type { Sweep } from './gen/ablate/v1/sweep';
import { baselineKey, cellsOf, differencesFrom, extent, pivot } from './grid_model';

const sweep: Sweep = { id: 's', spec: { baseline: { opt: 'adamw', attn: 'dense', size: 's' },
  grid: [
  { name: 'opt', values: ['adamw', 'muon'] },
  { name: 'attn', values: ['dense', 'nsa'] },
  { name: 'size', values: ['s', 'm'] },
  { name: 'seed', values: ['1', '2'] },
] } };

function job(opt: string, attn: string, size: string, seed: string, loss?: number,
  state = 'JOB_STATE_SUCCEEDED'): Job {
  return { spec: { jobId: `${opt}-${attn}-${size}-${seed}`, cell: [
    { dimension: 'opt', value: opt }, { dimension: 'attn', value: attn },
    { dimension: 'size', value: size }, { dimension: 'seed', value: seed }] },
    state: state as Job['state'], finalEvalLoss: loss };
}

const jobs: Job[] = [];
for (const opt of ['adamw', 'muon']) for (const attn of ['dense', 'nsa']) for (const size of ['s', 'm']) {
  for (const seed of ['1', '2']) {
    const base = 3 - (opt === 'muon' ? 0.2 : 0) + (attn === 'nsa' ? 0.1 : 0) - (size === 'm' ? 0.5 : 0);
    jobs.push(job(opt, attn, size, seed, base + (seed === '2' ? 0.02 : 0)));
  }
}

describe('cellsOf', () => {
  it('groups repeats into cells with their mean and sample std', () => {
    const cells = cellsOf(sweep, jobs, (j) => j.finalEvalLoss);
    expect(cells).toHaveLength(8);
    const c = cells[0];
    expect(c.values).toEqual({ opt: 'adamw', attn: 'dense', size: 's' });
    expect(c.jobs).toHaveLength(2);
    expect(c.mean).toBeCloseTo(3.01, 10);
    expect(c.std).toBeCloseTo(Math.sqrt(2 * 0.01 ** 2), 10);
    // Half the 95% interval, as `ablate results`: t(0.975, 1) = 12.706 times std / sqrt(2).
    expect(c.half).toBeCloseTo((12.706 * (c.std ?? 0)) / Math.sqrt(2), 10);
    expect(c.states).toEqual({ JOB_STATE_SUCCEEDED: 2 });
    expect(c.provisional.size).toBe(0);
  });

  it('marks the values of jobs still running as not final', () => {
    const running = job('adamw', 'dense', 's', '2', 2.9, 'JOB_STATE_RUNNING');
    const cells = cellsOf(sweep, [job('adamw', 'dense', 's', '1', 3), running],
      (j) => j.finalEvalLoss);
    expect(cells[0].samples.size).toBe(2);
    expect([...cells[0].provisional]).toEqual(['2']);
    // A difference with a running job on either side is not final either.
    const other = cellsOf(sweep, [job('adamw', 'dense', 's', '1', 3), running,
      job('muon', 'dense', 's', '1', 2.5), job('muon', 'dense', 's', '2', 2.4)],
    (j) => j.finalEvalLoss);
    const diffs = differencesFrom(other, baselineKey(sweep) ?? '');
    expect([...diffs[1].provisional]).toEqual(['2']);
  });

  it('leaves out the jobs an update dropped, as ablate results does, listing them apart', () => {
    const dropped = (j: Job): Job => ({ ...j, dropped: true });
    const old = dropped(job('adamw', 'dense', 's', '2', 2.5));
    // A changed cell's old run comes first; a cell the spec no longer has makes no cell.
    const cells = cellsOf(sweep, [job('adamw', 'dense', 's', '1', 3), old,
      dropped(job('adamw', 'dense', 's', '1', 2.4, 'JOB_STATE_CANCELLED')),
      job('adamw', 'dense', 's', '2', 3.02), dropped(job('adamw', 'nsa', 'm', '1', 1))],
    (j) => j.finalEvalLoss);
    expect(cells).toHaveLength(1);
    expect(cells[0].jobs.map((j) => j.spec?.jobId)).toEqual(['adamw-dense-s-1',
      'adamw-dense-s-2']);
    expect(cells[0].states).toEqual({ JOB_STATE_SUCCEEDED: 2 });
    expect(cells[0].mean).toBeCloseTo(3.01, 10);
    expect(cells[0].dropped).toEqual([old, expect.objectContaining({ dropped: true,
      state: 'JOB_STATE_CANCELLED' })]);
    expect(extent(cells)).toEqual([expect.closeTo(3.01, 10), expect.closeTo(3.01, 10)]);
  });

  it('leaves the mean unset where no repeat has the metric', () => {
    const cells = cellsOf(sweep, [job('adamw', 'dense', 's', '1', undefined, 'JOB_STATE_RUNNING')],
      (j) => j.finalEvalLoss);
    expect(cells[0].mean).toBeUndefined();
    expect(cells[0].states).toEqual({ JOB_STATE_RUNNING: 1 });
  });
});

describe('differencesFrom', () => {
  it('pairs repeats by seed against the baseline cell', () => {
    const cells = cellsOf(sweep, jobs, (j) => j.finalEvalLoss);
    const diffs = differencesFrom(cells, baselineKey(sweep) ?? '');
    expect(diffs[0].mean).toBeCloseTo(0, 10);
    const muonDenseS = diffs.find((c) => c.key === 'muon\u0000dense\u0000s');
    expect(muonDenseS?.mean).toBeCloseTo(-0.2, 10);
    // The seeds' shared offset cancels: the paired spread is zero.
    expect(muonDenseS?.std).toBeCloseTo(0, 10);
  });

  it('uses the spec baseline, and invents none for a sweep without one', () => {
    const named: Sweep = { ...sweep, spec: { ...sweep.spec,
      baseline: { opt: 'muon', attn: 'nsa', size: 'm' } } };
    expect(baselineKey(named)).toBe('muon\u0000nsa\u0000m');
    expect(baselineKey({ ...sweep, spec: { ...sweep.spec, baseline: {} } })).toBeNull();
  });
});

describe('pivot', () => {
  it('lays cells out by rows and columns, one panel per other dimension', () => {
    const cells = cellsOf(sweep, jobs, (j) => j.finalEvalLoss);
    const panels = pivot(sweep, cells, 'opt', 'attn');
    expect(panels.map((p) => p.label)).toEqual(['size=s', 'size=m']);
    expect(panels[0].rows).toEqual(['adamw', 'muon']);
    expect(panels[0].cols).toEqual(['dense', 'nsa']);
    expect(panels[1].cells.get('muon\u0000nsa')?.mean).toBeCloseTo(3 - 0.2 + 0.1 - 0.5 + 0.01, 10);
    expect(extent(cells)).toEqual([expect.closeTo(2.31, 10), expect.closeTo(3.11, 10)]);
  });
});
