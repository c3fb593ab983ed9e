// @vitest-environment jsdom
import { SweepModel } from '../sweep_model';
import { gridHtml } from './grid';
import { arrowTarget } from './grid_keys';

// Rows opt, columns attn, one panel per size: size=tiny, then size=small.
function panels(): HTMLElement {
  const m = new SweepModel();
  const grid = [{ name: 'opt', values: ['adamw', 'muon'] },
    { name: 'attn', values: ['dense', 'nsa'] }, { name: 'size', values: ['tiny', 'small'] }];
  const jobs = [];
  for (const opt of grid[0].values) {
    for (const attn of grid[1].values) {
      for (const size of grid[2].values) {
        jobs.push({ spec: { jobId: `${opt}-${attn}-${size}`, cell: [
          { dimension: 'opt', value: opt }, { dimension: 'attn', value: attn },
          { dimension: 'size', value: size }] }, state: 'JOB_STATE_SUCCEEDED' as never,
        finalEvalLoss: 3 });
      }
    }
  }
  m.reset({ id: 's', spec: { grid } }, jobs);
  const div = document.createElement('div');
  div.innerHTML = gridHtml({ model: m }, { rows: 'opt', cols: 'attn', metric: 'eval_loss' }).html;
  return div;
}

const cell = (div: HTMLElement, name: string) =>
  div.querySelector(`td[data-cell="${name}"]`) as HTMLTableCellElement;
const move = (div: HTMLElement, from: string, key: string) =>
  arrowTarget(cell(div, from), key)?.dataset.cell ?? null;

describe('arrow keys in the grid', () => {
  it('move within a panel, and stay at the grid\'s outer edges', () => {
    const div = panels();
    expect(move(div, 'adamw/dense/tiny', 'ArrowRight')).toBe('adamw/nsa/tiny');
    expect(move(div, 'adamw/dense/tiny', 'ArrowDown')).toBe('muon/dense/tiny');
    expect(move(div, 'adamw/dense/tiny', 'ArrowLeft')).toBeNull();
    expect(move(div, 'adamw/dense/tiny', 'ArrowUp')).toBeNull();
    expect(move(div, 'muon/nsa/small', 'ArrowRight')).toBeNull();
    expect(move(div, 'adamw/dense/tiny', 'Enter')).toBeNull();
  });

  it('go on past a panel\'s last column to the next panel\'s first, and back', () => {
    const div = panels();
    expect(move(div, 'muon/nsa/tiny', 'ArrowRight')).toBe('muon/dense/small');
    expect(move(div, 'muon/dense/small', 'ArrowLeft')).toBe('muon/nsa/tiny');
  });

  it('go down into the panel laid out below, and up again', () => {
    const div = panels();
    // Side by side (or no layout at all, as here): nothing below.
    expect(move(div, 'muon/nsa/tiny', 'ArrowDown')).toBeNull();
    // Stacked: size=tiny above size=small, each 100 px tall and as wide.
    const [top, bottom] = div.querySelectorAll('figure.panel');
    top.getBoundingClientRect = () => new DOMRect(0, 0, 300, 100);
    bottom.getBoundingClientRect = () => new DOMRect(0, 116, 300, 100);
    expect(move(div, 'muon/nsa/tiny', 'ArrowDown')).toBe('adamw/nsa/small');
    expect(move(div, 'adamw/nsa/small', 'ArrowUp')).toBe('muon/nsa/tiny');
  });
});
