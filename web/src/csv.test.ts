import { resultsCsv } from './csv';
import type { CellStats } from './grid_model';

describe('resultsCsv', () => {
  it('writes one quoted-where-needed row per cell', () => {
    const cell: CellStats = { key: 'k', values: { opt: 'adamw', note: 'a,"b"' }, jobs: [{}, {}],
      samples: new Map(), provisional: new Set(), mean: 2.5, std: undefined,
      states: { JOB_STATE_SUCCEEDED: 1 }, dropped: [] };
    expect(resultsCsv(['opt', 'note'], [cell], 'eval_loss')).toBe(
      'opt,note,jobs,succeeded,eval_loss_mean,eval_loss_std\r\nadamw,"a,""b""",2,1,2.5,\r\n');
  });
});
