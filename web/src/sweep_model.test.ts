import { SweepModel } from './sweep_model';

describe('SweepModel', () => {
  it('applies a snapshot, then deltas of jobs and metric points', () => {
    const m = new SweepModel();
    m.apply({ delta: false, sweep: { id: 's', spec: { name: 's' }, state: 'SWEEP_STATE_ACTIVE' },
      jobs: [{ spec: { jobId: 'j1', cell: [{ dimension: 'a', value: '1' }] },
        state: 'JOB_STATE_PENDING' }] });
    const grown = m.apply({ delta: true, sweep: { state: 'SWEEP_STATE_ACTIVE',
      counts: { total: 2, running: 1 } },
    jobs: [{ spec: { jobId: 'j1' }, state: 'JOB_STATE_RUNNING', step: '5' },
      { spec: { jobId: 'j2' }, state: 'JOB_STATE_PENDING' }],
    metrics: [{ jobId: 'j1', points: [{ name: 'train/loss', step: '5', value: 3 }] }] });
    expect([...grown]).toEqual(['j1']);
    expect(m.sweep?.spec?.name).toBe('s');
    expect(m.sweep?.counts?.running).toBe(1);
    expect(m.jobs).toHaveLength(2);
    expect(m.job('j1')?.state).toBe('JOB_STATE_RUNNING');
    expect(m.job('j1')?.spec?.cell).toEqual([{ dimension: 'a', value: '1' }]);
    expect(m.livePoints.get('j1')).toHaveLength(1);
    expect(m.ended()).toBe(false);
    m.apply({ delta: true, sweep: { state: 'SWEEP_STATE_COMPLETED' } });
    expect(m.ended()).toBe(true);
  });
});
