// Numbers with units and sensible digits, durations and relative times, as the views show them.

export function num(value: number | undefined | null, digits = 3): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return value.toExponential(2);
  // `digits` significant digits, but never fewer than the integer part has.
  const integerDigits = abs >= 1 ? Math.floor(Math.log10(abs)) + 1 : 0;
  return Number(value.toPrecision(Math.max(digits, integerDigits))).toString();
}

export function loss(value: number | undefined | null): string {
  return value === undefined || value === null || !Number.isFinite(value) ? '–' :
    value.toFixed(3);
}

export function signed(value: number | undefined | null): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return '–';
  return `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(3)}`;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function bytes(value: number | undefined | null): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return '–';
  let v = value;
  let unit = 0;
  while (Math.abs(v) >= 1024 && unit < BYTE_UNITS.length - 1) {
    v /= 1024;
    unit++;
  }
  return `${v.toFixed(v >= 100 || unit === 0 ? 0 : 1)} ${BYTE_UNITS[unit]}`;
}

const SI_PREFIXES: [number, string][] = [[1e15, 'P'], [1e12, 'T'], [1e9, 'G'], [1e6, 'M'],
  [1e3, 'k']];

// The SI prefix a count as large as `value` is written with, and its scale (1, '' below 1000).
function prefixFor(value: number): [number, string] {
  return SI_PREFIXES.find(([scale]) => Math.abs(value) >= scale) ?? [1, ''];
}

// A count in short form, as tokens, FLOPs and throughputs are written: 950, 1.2k, 320k, 400G.
export function count(value: number | undefined | null): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return '–';
  const [scale, prefix] = prefixFor(value);
  const scaled = value / scale;
  return `${scaled.toFixed(Math.abs(scaled) >= 100 ? 0 : 1)}${prefix}`;
}

export function rate(value: number | undefined | null, unit = 'tok/s'): string {
  return value === undefined || value === null || !Number.isFinite(value) ? '–' :
    `${count(value)} ${unit}`;
}

// Decimals that tell values `step` apart (ticks never read alike), and one more where that
// writes a round step exactly (2.5 keeps its .5).
export function decimalsFor(step: number): number {
  if (!(step > 0) || !Number.isFinite(step)) return 0;
  const d = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  const whole = (x: number) => Math.abs(x - Math.round(x)) <= 1e-6 * x;
  return !whole(step * 10 ** d) && whole(step * 10 ** (d + 1)) ? d + 1 : d;
}

// Axis labels for counts at `ticks`, `step` apart: the largest tick's SI prefix for all, and
// the decimals the step needs in it (0, 200G, 400G; 1.20G, 1.25G).
export function countTicks(ticks: number[], step: number): string[] {
  const [scale, prefix] = prefixFor(Math.max(0, ...ticks.map(Math.abs)));
  const decimals = decimalsFor(step / scale);
  return ticks.map((t) => (t === 0 ? '0' : `${(t / scale).toFixed(decimals)}${prefix}`));
}

// "1 line", "3 lines": a count and its noun, plural (by adding s) unless one.
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

// 3725 s -> "1 h 2 min".
export function duration(seconds: number | undefined | null): string {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds) || seconds < 0) {
    return '–';
  }
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.round(hours / 24)} d`;
}

// "5 min ago", "in 2 h", against `now` (milliseconds since the epoch).
export function relative(time: string | undefined, now = Date.now()): string {
  if (!time) return '–';
  const seconds = (now - Date.parse(time)) / 1000;
  if (!Number.isFinite(seconds)) return '–';
  if (Math.abs(seconds) < 5) return 'just now';
  return seconds > 0 ? `${duration(seconds)} ago` : `in ${duration(-seconds)}`;
}

export function seconds(time: string | undefined): number | undefined {
  if (!time) return undefined;
  const ms = Date.parse(time);
  return Number.isFinite(ms) ? ms / 1000 : undefined;
}

// What a chart or scale says when no job has `what`: not yet, or, once the sweep ended, not at
// all (a CPU job reports no GPU memory or MFU).
export function noValues(what: string, ended: boolean): string {
  return ended ? `no ${what}: no job reported it` : `no ${what} yet`;
}

// "JOB_STATE_RUNNING" -> "running".
export function stateName(value: string | undefined): string {
  return (value ?? 'UNSPECIFIED').replace(/^(JOB|SWEEP|ATTEMPT)_STATE_/, '').toLowerCase();
}

const HTML_SPECIAL = /[&<>"']/;

export function escapeHtml(text: string): string {
  // Most names and numbers hold nothing to escape; testing first skips building a new string.
  if (!HTML_SPECIAL.test(text)) return text;
  return text.replace(/[&<>"']/g, (c) =>
    ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}
