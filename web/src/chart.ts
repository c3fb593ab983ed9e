// Line charts of many series on uPlot (made for large time series: 100 series of 10,000
// points draw in milliseconds on one canvas), in the Okabe-Ito palette, with log scales and
// PNG export.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { download } from './csv';
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

export function drawChart(target: HTMLElement, lines: Line[], options: ChartOptions): uPlot {
  target.replaceChildren();
  const ink = cssVar('--fg', '#222');
  const grid = cssVar('--grid', '#ddd');
  const axis = (label: string): uPlot.Axis => ({ label, stroke: ink, grid: { stroke: grid },
    ticks: { stroke: grid } });
  const width = () => Math.max(320, target.clientWidth || 800);
  const height = options.height ?? 360;
  // The chart follows its box's width (a window narrowed or widened), until destroyed.
  const resized = new ResizeObserver(() => {
    if (plot.width !== width()) plot.setSize({ width: width(), height });
  });
  const plot = new uPlot({
    width: width(),
    height,
    scales: { x: { time: options.time }, y: { distr: options.logY ? 3 : 1 } },
    axes: [axis(options.xLabel), axis(options.yLabel)],
    series: [{ label: options.xLabel }, ...lines.map((l, i) => ({
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
