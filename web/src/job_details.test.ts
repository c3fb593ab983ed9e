import { attemptOrdinals, evalLossText, settingsRows } from './job_details';

describe('evalLossText', () => {
  it('shows a running job\'s last eval loss, and calls only a finished one\'s final', () => {
    expect(evalLossText({ state: 'JOB_STATE_RUNNING', lastEvalLoss: 2.34567 }))
      .toBe('last eval loss 2.346');
    expect(evalLossText({ state: 'JOB_STATE_SUCCEEDED', finalEvalLoss: 2.1, lastEvalLoss: 2.1 }))
      .toBe('final eval loss 2.100');
    expect(evalLossText({ state: 'JOB_STATE_RUNNING' })).toBe('eval loss –');
  });
});

describe('attemptOrdinals', () => {
  it('numbers a job\'s attempts from 1 in the order the coordinator made them', () => {
    const ordinals = attemptOrdinals([{ id: '103' }, { id: '9' }, { id: '57' }]);
    expect([...ordinals]).toEqual([['9', 1], ['57', 2], ['103', 3]]);
  });
});

describe('settingsRows', () => {
  const config = { model: 'tiny', batchSize: 16, cpuThreads: 0, microBatchSize: 0,
    divergenceEvals: 0, gradBucketMb: 0, gradClip: 0, optimizerArgs: { beta2: 0.95 } };
  const rows = (json?: string) => new Map(settingsRows(config, json));

  it('names the default a zero stands for, and keeps a zero that means zero', () => {
    const r = rows();
    expect(r.get('microBatchSize')).toBe('default (the whole batch)');
    expect(r.get('divergenceEvals')).toBe('default (3)');
    expect(r.get('gradBucketMb')).toBe('default (100)');
    expect(r.get('cpuThreads')).toBe("default (PyTorch's)");
    expect(r.get('lrSchedule')).toBe('default (cosine)');
    expect(r.get('gradClip')).toBe('0');
    expect(r.get('optimizerArgs.beta2')).toBe('0.95');
  });

  it('shows what the job ran with once its trainer reported it', () => {
    const r = rows(JSON.stringify({ model: 'tiny', batch_size: 16, micro_batch_size: 16,
      divergence_evals: 3, lr_schedule: 'cosine', optimizer_args: { beta2: 0.95 } }));
    expect(r.get('microBatchSize')).toBe('16 (default)');
    expect(r.get('divergenceEvals')).toBe('3 (default)');
    expect(r.get('lrSchedule')).toBe('cosine (default)');
    expect(r.get('batchSize')).toBe('16');
    // Zero in the config it ran with too (the JSON leaves zeros out): still the default.
    expect(r.get('gradBucketMb')).toBe('default (100)');
  });
});
