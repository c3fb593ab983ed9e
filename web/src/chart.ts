// Line charts of many series on uPlot (made for large time series: 100 series of 10,000
// points draw in milliseconds on one canvas), in the Okabe-Ito palette, with log scales and
// PNG export.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { download } from './csv';
import { count, countTicks } from './format';
import { seriesColor } from './palette';

export interface Line {
  label: string;
  x: number[];
  y: (number | null)[];
}

export interface ChartOptions {
  xLabel: string;
  yLabel: string;
  logY: boolean;
  time: boolean;  // x is seconds since the epoch
  height?: number;
  // x is a count (tokens, FLOPs), written short (400G) where uPlot writes 400,000,000,000.
  xCounts?: boolean;
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

// Aligns every line on the union of their x values (uPlot draws series over one x array);
// gaps are nulls and are bridged.
export function align(lines: Line[]): uPlot.AlignedData {
  if (!lines.length) return [[]];
  return uPlot.join(lines.map((l) => [l.x, l.y as number[]] as uPlot.AlignedData));
}

// The index of a series' only point, which no line joins: drawn as a marker (an eval/loss
// evaluated once per job). Null where the series has none or several (lines show those).
export function lonePoint(ys: ArrayLike<number | null | undefined>): number[] | null {
  let found = -1;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || y === undefined || Number.isNaN(y)) continue;
    if (found >= 0) return null;
    found = i;
  }
  return found >= 0 ? [found] : null;
}

// The x range: the data's, except that a single x (every series evaluated at one step only)
// gets a narrow range around it, where uPlot's own would run from 0 to twice it (a day, in time).
export function xRange(xs: ArrayLike<number>, min: number, max: number,
  time: boolean): [number, number] {
  const [lo, hi] = [xs[0], xs[xs.length - 1]];
  if (!xs.length || lo !== hi) return [min, max];
  const pad = time ? 60 : Math.abs(lo) * 0.05 || 1;
  return [lo - pad, hi + pad];
}

export function drawChart(target: HTMLElement, lines: Line[], options: ChartOptions): uPlot {
  target.replaceChildren();
  const ink = cssVar('--fg', '#222');
  const grid = cssVar('--grid', '#ddd');
  const axis = (label: string): uPlot.Axis => ({ label, stroke: ink, grid: { stroke: grid },
    ticks: { stroke: grid } });
  const xAxis = axis(options.xLabel);
  const xSeries: uPlot.Series = { label: options.xLabel };
  if (options.xCounts) {
    xAxis.values = (_u, ticks, _axis, _space, step) => countTicks(ticks, step);
    xSeries.value = (_u, x) => (x === null ? '--' : count(x));
  }
  const width = () => Math.max(320, target.clientWidth || 800);
  const height = options.height ?? 360;
  // The chart follows its box's width (a window narrowed or widened), until destroyed.
  const resized = new ResizeObserver(() => {
    if (plot.width !== width()) plot.setSize({ width: width(), height });
  });
  const plot = new uPlot({
    width: width(),
    height,
    scales: { x: { time: options.time, range: (u, min, max) =>
      xRange(u.data[0], min, max, options.time) }, y: { distr: options.logY ? 3 : 1 } },
    axes: [xAxis, axis(options.yLabel)],
    series: [xSeries, ...lines.map((l, i) => ({
      label: l.label, stroke: seriesColor(i), width: 1.5, spanGaps: true,
      points: { show: false, size: 7, fill: seriesColor(i),
        filter: (u: uPlot, si: number) => lonePoint(u.data[si]) },
    }))],
    legend: { live: true },
    hooks: { destroy: [() => resized.disconnect()] },
  }, align(lines), target);
  resized.observe(target);
  target.dataset.series = String(lines.length);
  target.dataset.points = String(lines.reduce((n, l) => n + l.x.length, 0));
  return plot;
}

export function exportPng(plot: uPlot, name: string): void {
  plot.ctx.canvas.toBlob((blob) => blob && download(name, blob), 'image/png');
}
