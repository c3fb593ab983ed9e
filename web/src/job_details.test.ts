import { evalLossText, settingsRows } from './job_details';

describe('evalLossText', () => {
  it('shows a running job\'s last eval loss, and calls only a finished one\'s final', () => {
    expect(evalLossText({ state: 'JOB_STATE_RUNNING', lastEvalLoss: 2.34567 }))
      .toBe('last eval loss 2.346');
    expect(evalLossText({ state: 'JOB_STATE_SUCCEEDED', finalEvalLoss: 2.1, lastEvalLoss: 2.1 }))
      .toBe('final eval loss 2.100');
    expect(evalLossText({ state: 'JOB_STATE_RUNNING' })).toBe('eval loss –');
  });
});

describe('settingsRows', () => {
  const config = { model: 'tiny', batchSize: 16, cpuThreads: 0, microBatchSize: 0,
    divergenceEvals: 0, gradBucketMb: 0, gradClip: 0, warmupSteps: 0, evalEvery: 0,
    optimizerArgs: { beta2: 0.95 }, hfModel: { vocabSize: 8 } };
  const rows = (json?: string) => new Map(settingsRows(config, json));

  it('names fields as sweep files do', () => {
    expect([...rows().keys()].slice(0, 4)).toEqual(['model', 'batch_size', 'cpu_threads',
      'micro_batch_size']);
    expect(rows().get('optimizer_args.beta2')).toBe('0.95');
    expect(rows().get('hf_model.vocab_size')).toBe('8');
  });

  it('says what a zero stands for, and keeps a zero that means zero', () => {
    const r = rows();
    expect(r.get('micro_batch_size')).toBe('default (the whole batch)');
    expect(r.get('divergence_evals')).toBe('default (3)');
    expect(r.get('grad_bucket_mb')).toBe('default (100)');
    expect(r.get('lr_schedule')).toBe('default (cosine)');
    expect(r.get('eval_every')).toBe('0 (evaluates only at the end)');
    // Not in the spec: zero, as the proto's JSON leaves zeros out.
    expect(r.get('checkpoint_every')).toBe(
      '0 (one every 30 minutes of training, and the final step)');
    expect(r.get('grad_clip')).toBe('0 (no clipping)');
    expect(r.get('warmup_steps')).toBe('0');
  });

  it('shows what the job ran with once its trainer reported it', () => {
    const r = rows(JSON.stringify({ model: 'tiny', batch_size: 16, micro_batch_size: 16,
      divergence_evals: 3, lr_schedule: 'cosine', optimizer_args: { beta2: 0.95 } }));
    expect(r.get('micro_batch_size')).toBe('16 (default)');
    expect(r.get('divergence_evals')).toBe('3 (default)');
    expect(r.get('lr_schedule')).toBe('cosine (default)');
    expect(r.get('batch_size')).toBe('16');
    // Zero in the config it ran with too (the JSON leaves zeros out): still the default.
    expect(r.get('grad_bucket_mb')).toBe('default (100)');
    expect(r.get('eval_every')).toBe('0 (evaluates only at the end)');
  });

  it('names the worker as the source of a CPU job\'s threads, before and after it ran', () => {
    expect(rows().get('cpu_threads')).toBe(
      "default (its worker's --cpu-threads-per-slot per slot, 1 unless set)");
    expect(rows(JSON.stringify({ cpu_threads: 4 })).get('cpu_threads')).toBe('4 (default)');
  });
});
