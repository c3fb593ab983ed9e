// The Job view's GPU panel: the latest utilization, memory and temperature of each of the
// job's GPUs as its worker sampled them, and one quantity's curves, chosen by the user. Hidden
// while no GPU has reported (a CPU job never shows it).
import { drawChart } from '../chart';
import { h, select } from '../dom';
import type { MetricSeries } from '../gen/ablate/v1/metrics';
import { GPU_QUANTITIES, gpuLines, gpuRows, type GpuQuantity } from '../gpu';
import type uPlot from 'uplot';

export function gpuPanel(): { el: HTMLElement; update: (metrics: MetricSeries[]) => void;
  dispose: () => void } {
  const quantities = Object.keys(GPU_QUANTITIES) as GpuQuantity[];
  let quantity: GpuQuantity = 'utilization_percent';
  let metrics: MetricSeries[] = [];
  let plot: uPlot | null = null;
  const table = h('table', { className: 'table', id: 'job-gpus' });
  const chartEl = h('div', { className: 'chart', id: 'gpu-chart' });
  const el = h('section', { id: 'gpu-panel', hidden: true }, h('h2', {}, 'GPUs'), table,
    h('div', { className: 'controls' }, select('curve', quantities.map((q) =>
      [q, GPU_QUANTITIES[q].label] as [string, string]), quantity, (v) => {
      quantity = v as GpuQuantity;
      draw();
    }, 'gpu-metric')), chartEl);

  const draw = () => {
    plot?.destroy();
    const { label, unit } = GPU_QUANTITIES[quantity];
    plot = drawChart(chartEl, gpuLines(metrics, quantity), { xLabel: 'wall time',
      yLabel: `${label} (${unit})`, logY: false, time: true, height: 220 });
    chartEl.dataset.quantity = quantity;
  };
  const update = (all: MetricSeries[]) => {
    const rows = gpuRows(all);
    el.hidden = !rows.length;
    if (!rows.length) return;
    metrics = all;
    table.replaceChildren(h('thead', {}, h('tr', {}, h('th', {}, 'GPU'),
      ...quantities.map((q) => h('th', { className: 'num' }, GPU_QUANTITIES[q].label)))),
    h('tbody', {}, ...rows.map((r) => h('tr', { 'data-rank': r.rank }, h('td', {}, String(r.rank)),
      ...quantities.map((q) => h('td', { className: 'num', 'data-quantity': q },
        GPU_QUANTITIES[q].format(r.latest[q])))))));
    draw();
  };
  return { el, update, dispose: () => plot?.destroy() };
}
