// Curves: chosen jobs' series overlaid (loss, eval loss, learning rate, grad norm, tokens/s)
// against step, tokens, training FLOPs or wall time, linear or log, smoothed by an exponential
// moving average; new points from the sweep's event stream extend the lines as they arrive.
import { api } from '../api';
import type { SweepSession } from '../app';
import { align, drawChart, exportPng, type Line } from '../chart';
import { CURVE_METRICS, X_LABELS, curvePoints, xValues, type XAxis } from '../curves_data';
import { h, select } from '../dom';
import { stateName } from '../format';
import type { Job } from '../gen/ablate/v1/job';
import type { MetricSeries } from '../gen/ablate/v1/metrics';
import { varyingDimensions } from '../grid_model';
import { smooth } from '../pareto';
import type uPlot from 'uplot';

// A job's cell as "dimension=value ..."; given `varying`, only those dimensions, since the values
// every job shares make long labels that look alike once cut short.
export function jobLabel(job: Job, varying?: Set<string>): string {
  const cell = job.spec?.cell ?? [];
  const shown = varying ? cell.filter((c) => varying.has(c.dimension ?? '')) : cell;
  return (shown.length ? shown : cell).map((c) => `${c.dimension}=${c.value}`).join(' ') ||
    job.spec?.jobId || '';
}

interface State {
  metric: string;
  axis: XAxis;
  log: boolean;
  smoothing: number;
}

// Lines of `metric` for `jobs` from `fetched` series and `live` points.
export function linesOf(jobs: Job[], fetched: Map<string, MetricSeries | undefined>,
  session: SweepSession | null, state: State): Line[] {
  const varying = varyingDimensions(session?.model.sweep ?? null);
  return jobs.map((job) => {
    const id = job.spec?.jobId ?? '';
    const pts = curvePoints(fetched.get(id), session?.model.livePoints.get(id), state.metric);
    const x = xValues(pts, state.axis, job);
    const label = jobLabel(job, varying);
    // A job the axis cannot place keeps its legend entry, without points.
    if (!x) return { label: `${label} (FLOPs unknown)`, x: [], y: [] };
    return { label, x, y: smooth(pts.values, state.smoothing) };
  });
}

export function curvesView(session: SweepSession): { el: HTMLElement; dispose: () => void } {
  const controls = h('div', { className: 'controls' });
  const picker = h('select', { multiple: true, size: 8, id: 'curve-jobs',
    'aria-label': 'jobs to overlay' });
  const chartEl = h('div', { className: 'chart', id: 'curves-chart' });
  const el = h('section', { className: 'view', 'data-view': 'curves' }, controls,
    h('div', { className: 'curves-layout' }, h('label', { className: 'picker' }, 'jobs', picker),
      chartEl));
  const state: State = { metric: 'train/loss', axis: 'step', log: false, smoothing: 0 };
  const fetched = new Map<string, MetricSeries | undefined>();
  let chosen: string[] = [];
  let plot: uPlot | null = null;

  // Fetched series per job and metric: `${job id}\0${metric}`.
  const key = (id: string) => `${id}\u0000${state.metric}`;
  const draw = () => {
    const jobs = chosen.map((id) => session.model.job(id)).filter((j): j is Job => !!j);
    const current = new Map(chosen.map((id) => [id, fetched.get(key(id))]));
    plot?.destroy();
    plot = drawChart(chartEl, linesOf(jobs, current, session, state), {
      xLabel: X_LABELS[state.axis], yLabel: state.metric, logY: state.log,
      time: state.axis === 'wall', xCounts: state.axis === 'tokens' || state.axis === 'flops' });
  };
  // New live points: the same lines, longer; uPlot redraws from new data without a rebuild.
  const extend = () => {
    const jobs = chosen.map((id) => session.model.job(id)).filter((j): j is Job => !!j);
    const lines = linesOf(jobs, new Map(chosen.map((id) => [id, fetched.get(key(id))])), session,
      state);
    if (!plot || plot.series.length !== lines.length + 1) return draw();
    plot.setData(align(lines));
    chartEl.dataset.points = String(lines.reduce((n, l) => n + l.x.length, 0));
  };
  const load = async () => {
    await Promise.all(chosen.filter((id) => !fetched.has(key(id))).map(async (id) => {
      const { metrics = [] } = await api.job(id, [state.metric], 2000);
      fetched.set(key(id), metrics.find((m) => m.name === state.metric));
    }));
    draw();
  };
  const setChosen = (ids: string[]) => {
    chosen = ids;
    for (const o of picker.options) o.selected = chosen.includes(o.value);
    void load();
  };
  picker.addEventListener('change', () =>
    setChosen([...picker.selectedOptions].map((o) => o.value)));
  const smoothing = h('input', { type: 'range', min: '0', max: '0.99', step: '0.01', value: '0',
    id: 'curve-smoothing' });
  smoothing.addEventListener('input', () => { state.smoothing = Number(smoothing.value); void load(); });
  const log = h('input', { type: 'checkbox', id: 'curve-log' });
  log.addEventListener('change', () => { state.log = log.checked; void load(); });
  controls.append(
    select('metric', CURVE_METRICS.map((m) => [m, m] as [string, string]), state.metric,
      (v) => { state.metric = v; void load(); }, 'curve-metric'),
    select('x axis', (Object.keys(X_LABELS) as XAxis[]).map((a) => [a, X_LABELS[a]] as
      [string, string]), state.axis, (v) => { state.axis = v as XAxis; void load(); }, 'curve-axis'),
    h('label', { className: 'control' }, log, ' log scale'),
    h('label', { className: 'control' }, 'smoothing ', smoothing),
    h('button', { type: 'button', id: 'export-png', onclick: () => plot &&
      exportPng(plot, `${session.sweepId}-${state.metric.replace('/', '_')}.png`) }, 'Export PNG'));

  let listed = 0;
  const unlisten = session.listen((grown) => {
    const jobs = session.model.jobs;
    const shown = jobs.slice(0, 2000);
    if (jobs.length !== listed) {
      listed = jobs.length;
      picker.replaceChildren(...shown.map((j) => h('option', { value: j.spec?.jobId ?? '',
        selected: chosen.includes(j.spec?.jobId ?? '') })));
    }
    const varying = varyingDimensions(session.model.sweep);
    shown.forEach((j, i) => {
      const text = `${jobLabel(j, varying)} · ${stateName(j.state)}${j.dropped ?
        ' (dropped by an update)' : ''}`;
      const option = picker.options[i];
      if (option && option.text !== text) {
        option.text = text;
        option.title = `${jobLabel(j)} (job ${j.spec?.jobId ?? ''})`;
      }
    });
    // Until the user picks, the first eight jobs of the spec's cells that have points are shown.
    if (!chosen.length) {
      const started = jobs.filter((j) => !j.dropped && Number(j.step ?? 0) > 0).slice(0, 8);
      if (started.length) setChosen(started.map((j) => j.spec?.jobId ?? ''));
      return;
    }
    if (chosen.some((id) => grown.has(id))) extend();
  });
  return { el, dispose: () => { unlisten(); plot?.destroy(); } };
}
