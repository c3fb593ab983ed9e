// @vitest-environment jsdom
import type { SweepSession } from '../app';
import { SweepModel } from '../sweep_model';
import { viridis } from '../palette';
import { cellColor, cellLabel, gridHtml, gridNote, gridView } from './grid';
import { GRID_METRICS } from '../metrics';

function model(baseline?: Record<string, string>): SweepModel {
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
  m.reset({ id: 's', spec: { baseline, grid: [{ name: 'opt', values: ['adamw', 'muon'] },
    { name: 'attn', values: ['dense', 'nsa'] }] } }, jobs);
  return m;
}

function render(metric: string, baseline?: Record<string, string>): HTMLElement {
  const div = document.createElement('div');
  div.innerHTML = gridHtml({ model: model(baseline) }, { rows: 'opt', cols: 'attn', metric }).html;
  return div;
}

// The grid view of a session that has `m` already, drawn (its first draw waits for a timer, which
// a loaded machine may run late: wait for the controls rather than for a fixed time).
async function view(m: SweepModel): Promise<HTMLElement> {
  const session = { sweepId: 's', model: m, listen: (l: (g: Set<string>) => void) => {
    l(new Set());
    return () => true;
  } } as unknown as SweepSession;
  const { el } = gridView(session);
  await vi.waitFor(() => expect(el.querySelector('#grid-metric')).not.toBeNull(),
    { timeout: 5000 });
  return el;
}

function choose(el: HTMLElement, id: string, value: string): void {
  const s = el.querySelector(`#${id}`) as HTMLSelectElement;
  s.value = value;
  s.dispatchEvent(new Event('change'));
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

  it('shows a running job\'s last eval loss, marked as not final', () => {
    const m = new SweepModel();
    m.reset({ id: 's', spec: { grid: [{ name: 'opt', values: ['adamw', 'muon'] }] } }, [
      { spec: { jobId: 'a', cell: [{ dimension: 'opt', value: 'adamw' }] },
        state: 'JOB_STATE_RUNNING', lastEvalLoss: 2.9 },
      { spec: { jobId: 'm', cell: [{ dimension: 'opt', value: 'muon' }] },
        state: 'JOB_STATE_SUCCEEDED', finalEvalLoss: 2.5, lastEvalLoss: 2.5 }]);
    const out = gridHtml({ model: m }, { rows: 'opt', cols: '', metric: 'eval_loss' });
    const div = document.createElement('div');
    div.innerHTML = out.html;
    const running = cell(div, 'adamw').querySelector('.value') as HTMLElement;
    expect(running.textContent).toBe('~2.900');
    expect(running.classList.contains('provisional')).toBe(true);
    expect(cell(div, 'muon').querySelector('.value')?.textContent).toBe('2.500');
    expect(cellLabel(out.cells[0], GRID_METRICS[0])).toMatch(/1 from running jobs, not final/);
    expect(gridNote(out.cells, 2, GRID_METRICS[0])).toMatch(/~ marks a value with running jobs/);
  });

  it('says its ± is the 95% interval over seeds, as the CLI\'s', () => {
    const m = new SweepModel();
    m.reset({ id: 's', spec: { repeats: 3, grid: [{ name: 'opt', values: ['adamw'] }] } },
      [2.0025452077388763, 1.9647450000047684, 1.9047718048095703].map((loss, i) => ({
        spec: { jobId: `a${i}`, cell: [{ dimension: 'opt', value: 'adamw' },
          { dimension: 'seed', value: String(i + 1) }] },
        state: 'JOB_STATE_SUCCEEDED', finalEvalLoss: loss })));
    const out = gridHtml({ model: m }, { rows: 'opt', cols: '', metric: 'eval_loss' });
    const div = document.createElement('div');
    div.innerHTML = out.html;
    // `ablate results` gives this cell 1.9574 [1.8349, 2.0798]; its std is 0.049.
    expect(cell(div, 'adamw').querySelector('.spread')?.textContent).toBe('±0.122');
    expect(cellLabel(out.cells[0], GRID_METRICS[0])).toBe(
      'opt=adamw: 1.957, 95% interval [1.835, 2.080] (3 of 3 repeats; 3 succeeded)');
    expect(gridNote(out.cells, 3, GRID_METRICS[0])).toBe('1 cell of 3 jobs; ± is half the ' +
      '95% confidence interval of the mean over a cell\'s seeds (Student\'s t, as ' +
      'ablate results gives it).');
  });

  it('leaves out the jobs an update dropped, naming them in their cell\'s label', async () => {
    const m = model();
    // adamw/dense ran again with a changed config; a cell the spec no longer has.
    m.reset(m.sweep ?? {}, [
      { spec: { jobId: 'old', cell: m.jobs[0].spec?.cell }, state: 'JOB_STATE_SUCCEEDED',
        finalEvalLoss: 1, dropped: true },
      ...m.jobs,
      { spec: { jobId: 'gone', cell: [{ dimension: 'opt', value: 'soap' },
        { dimension: 'attn', value: 'dense' }] }, state: 'JOB_STATE_CANCELLED', dropped: true },
    ]);
    const out = gridHtml({ model: m }, { rows: 'opt', cols: 'attn', metric: 'eval_loss' });
    expect(out.cells).toHaveLength(4);
    const div = document.createElement('div');
    div.innerHTML = out.html;
    const first = cell(div, 'adamw/dense');
    expect(first.querySelector('.value')?.textContent).toBe('3.000');
    expect(first.dataset.jobId).toBe('adamw-dense');
    expect(cellLabel(out.cells[Number(first.dataset.index)], GRID_METRICS[0])).toBe(
      'opt=adamw, attn=dense: 3.000 (1 of 1 repeats; 1 succeeded; old dropped by an update, ' +
      'not counted)');
    // The dropped job's loss of 1 is no end of the colour scale.
    expect(cell(div, 'muon/dense').dataset.color).toBe(viridis(1));
    expect(gridNote(out.cells, 4, GRID_METRICS[0], 2)).toBe('4 cells of 4 jobs; 2 jobs an ' +
      'update dropped from the sweep left out, as ablate results leaves them out.');
    expect((await view(m)).querySelector('#grid-note')?.textContent).toMatch(
      /^4 cells of 4 jobs; 2 jobs an update dropped/);
  });

  it('shows differences from the spec\'s baseline on a diverging scale', () => {
    const div = render('baseline_diff', { opt: 'muon', attn: 'dense' });
    expect(div.querySelectorAll('td.baseline')).toHaveLength(1);
    expect(cell(div, 'muon/dense').classList.contains('baseline')).toBe(true);
    expect(cell(div, 'muon/dense').querySelector('.value')?.textContent).toBe('+0.000');
    expect(cell(div, 'adamw/dense').querySelector('.value')?.textContent).toBe('+0.200');
    expect(cell(div, 'muon/dense').dataset.color).toBe('#f7f7f7');
  });

  it('invents no baseline for a sweep whose spec names none', async () => {
    const div = render('baseline_diff');
    expect(div.querySelectorAll('td.baseline')).toHaveLength(0);
    expect(cell(div, 'adamw/dense').querySelector('.value')?.textContent).toBe('3.000');
    const options = (el: HTMLElement) => [...(el.querySelector('#grid-metric') as
      HTMLSelectElement).options].map((o) => o.value);
    expect(options(await view(model()))).not.toContain('baseline_diff');
    expect(options(await view(model({ opt: 'adamw', attn: 'dense' })))).toContain('baseline_diff');
  });

  it('draws one column on "—", and swaps rows and columns when asked for both', async () => {
    const el = await view(model());
    choose(el, 'grid-cols', '');
    expect((el.querySelector('#grid-cols') as HTMLSelectElement).value).toBe('');
    // Rows opt, one column, a panel per attn.
    const tables = [...el.querySelectorAll('table.heat')];
    expect(tables.map((t) => t.querySelectorAll('th[scope="col"]').length)).toEqual([1, 1]);
    expect(el.querySelectorAll('td.cell')).toHaveLength(4);
    // One column leaves no dimension to swap into the rows: refused, with the reason.
    choose(el, 'grid-cols', 'opt');
    expect((el.querySelector('#grid-cols') as HTMLSelectElement).value).toBe('');
    expect(el.querySelector('#grid-notice')?.textContent).toMatch(/opt is the rows already/);
    choose(el, 'grid-cols', 'attn');
    choose(el, 'grid-rows', 'attn');
    expect((el.querySelector('#grid-rows') as HTMLSelectElement).value).toBe('attn');
    expect((el.querySelector('#grid-cols') as HTMLSelectElement).value).toBe('opt');
    expect(el.querySelector('#grid-notice')?.textContent).toMatch(/swapped/);
  });
});
