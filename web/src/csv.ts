// The results table as CSV (RFC 4180): one row per cell, its dimensions, then its repeats'
// count, how many succeeded, and the chosen metric's mean and sample standard deviation.
import type { CellStats } from './grid_model';

function field(value: string | number | undefined): string {
  if (value === undefined || (typeof value === 'number' && !Number.isFinite(value))) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function resultsCsv(dimensions: string[], cells: CellStats[], metric: string): string {
  const header = [...dimensions, 'jobs', 'succeeded', `${metric}_mean`, `${metric}_std`];
  const lines = [header.map(field).join(',')];
  for (const c of cells) {
    lines.push([...dimensions.map((d) => c.values[d]), c.jobs.length,
      c.states.JOB_STATE_SUCCEEDED ?? 0, c.mean, c.std].map(field).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

// Offers `text` as a file download.
export function download(name: string, blob: Blob): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
