// @vitest-environment jsdom
import { SweepModel } from '../sweep_model';
import { viridis } from '../palette';
import { cellColor, cellLabel, gridHtml } from './grid';
import { GRID_METRICS } from '../metrics';

function model(): SweepModel {
  const m = new SweepModel();
  const jobs = [];
  for (const opt of ['adamw', 'muon']) {
    for (const attn of ['dense', 'nsa']) {
      const loss = 3 - (opt === 'muon' ? 0.2 : 0) + (attn === 'nsa' ? 0.1 : 0);
      jobs.push({ spec: { jobId: `${opt}-${attn}`, cell: [{ dimension: 'opt', value: opt },
        { dimension: 'attn', value: attn }] },
      state: (opt === 'muon' && attn === 'nsa' ? 'JOB_STATE_FAILED' : 'JOB_STATE_SUCCEEDED') as never,
      finalEvalLoss: opt === 'muon' && attn === 'nsa' ? undefined : loss });
    }
  }
  m.reset({ id: 's', spec: { grid: [{ name: 'opt', values: ['adamw', 'muon'] },
    { name: 'attn', values: ['dense', 'nsa'] }] } }, jobs);
  return m;
}

function render(metric: string): HTMLElement {
  const div = document.createElement('div');
  div.innerHTML = gridHtml({ model: model() }, { rows: 'opt', cols: 'attn', metric }).html;
  return div;
}

function cell(div: HTMLElement, name: string): HTMLElement {
  return div.querySelector(`td[data-cell="${name}"]`) as HTMLElement;
}

describe('grid view', () => {
  it('colors each cell by its loss, the lowest brightest', () => {
    const div = render('eval_loss');
    expect(div.querySelectorAll('td.cell')).toHaveLength(4);
    // Range 2.8 (muon/dense, best: yellow) .. 3.1 (adamw/nsa, worst: purple).
    expect(cell(div, 'muon/dense').dataset.color).toBe(viridis(1));
    expect(cell(div, 'adamw/nsa').dataset.color).toBe(viridis(0));
    // 3.0 sits two thirds of the way to the worst: the nearest of the scale's 65 levels.
    expect(cell(div, 'adamw/dense').dataset.color).toBe(viridis(Math.round(64 / 3) / 64));
    expect(cellColor(GRID_METRICS[0], 3.0, 2.8, 3.1)).toBe(viridis(21 / 64));
    expect(cell(div, 'adamw/dense').className).toBe('cell heat-21');
    expect(cell(div, 'adamw/dense').querySelector('.value')?.textContent).toBe('3.000');
    expect(cell(div, 'muon/dense').dataset.jobId).toBe('muon-dense');
  });

  it('marks a failed cell and leaves it uncolored', () => {
    const failed = cell(render('eval_loss'), 'muon/nsa');
    expect(failed.dataset.color).toBe('');
    expect(failed.querySelector('.mark')?.textContent).toBe('✕');
    const out = gridHtml({ model: model() }, { rows: 'opt', cols: 'attn', metric: 'eval_loss' });
    const stats = out.cells[Number(failed.dataset.index)];
    expect(cellLabel(stats, GRID_METRICS[0])).toBe('opt=muon, attn=nsa: – (0 of 1 repeats; 1 failed)');
  });

  it('shows differences from the baseline on a diverging scale', () => {
    const div = render('baseline_diff');
    expect(cell(div, 'adamw/dense').classList.contains('baseline')).toBe(true);
    expect(cell(div, 'adamw/dense').querySelector('.value')?.textContent).toBe('+0.000');
    expect(cell(div, 'muon/dense').querySelector('.value')?.textContent).toBe('−0.200');
    expect(cell(div, 'adamw/dense').dataset.color).toBe('#f7f7f7');
  });
});
