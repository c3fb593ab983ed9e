// Colour-blind-safe colours: viridis for sequential heatmaps, a blue-white-orange diverging
// scale for differences (both ends tell apart under the common colour-vision deficiencies), and
// the Okabe-Ito qualitative palette for series.

// Viridis at 9 evenly spaced stops (matplotlib's published colormap values).
const VIRIDIS = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];
// Blue (better) through near-white to orange (worse).
const DIVERGING = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130],
  [178, 88, 24]];

// Okabe & Ito (2008), "Color Universal Design", without black (used for text).
export const OKABE_ITO = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00',
  '#F0E442', '#999999'];

function hex(c: number[]): string {
  return `#${c.map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`;
}

function interpolate(stops: number[][], t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  return hex(stops[i].map((v, k) => v + (stops[i + 1][k] - v) * f));
}

// t in [0, 1] -> viridis colour as #rrggbb.
export function viridis(t: number): string {
  return interpolate(VIRIDIS, t);
}

// t in [-1, 1] -> diverging colour; 0 is neutral.
export function diverging(t: number): string {
  return interpolate(DIVERGING, (t + 1) / 2);
}

// Black or white, whichever reads better on `background` (#rrggbb), by WCAG's luminance.
export function textOn(background: string): string {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(background.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 ? '#000000' : '#ffffff';
}

export function seriesColor(i: number): string {
  return OKABE_ITO[i % OKABE_ITO.length];
}
