// Arrow keys in the Grid: they move focus between the cells of one panel's table and, past a
// table's edge, into the neighbouring panel. Right from the last column goes to the next
// panel's first column and Left back, in the panels' order; Down from the last row goes to the
// panel laid out below (the nearest one across, where the line below is shorter) and Up back.
// The row (or column) is kept where the other panel has one; an empty cell is not a stop.

type Move = [rows: number, cols: number];

const MOVES: Record<string, Move> = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0],
  ArrowDown: [1, 0] };

// A panel's rows of cells; each row's first cell is its header (th), not a stop.
function rowsOf(panel: Element): HTMLTableRowElement[] {
  return [...(panel.querySelector('tbody')?.rows ?? [])];
}

// How far `x` lies outside [left, right]: 0 within.
function gap(x: number, rect: DOMRect): number {
  return Math.max(0, rect.left - x, x - rect.right);
}

// The panel in the line of panels just below (down) or above `panel`, nearest to `x` across;
// panels share a line's top, as a wrapping flex box lays them out.
function panelAcross(panel: Element, down: boolean, x: number): Element | null {
  const here = panel.getBoundingClientRect();
  const lines = [...(panel.parentElement?.children ?? [])].map((p) => ({ p,
    rect: p.getBoundingClientRect() })).filter(({ rect }) => down ?
    rect.top > here.top && rect.top >= here.bottom - 1 :
    rect.top < here.top && rect.bottom <= here.top + 1);
  if (!lines.length) return null;
  const top = down ? Math.min(...lines.map((l) => l.rect.top)) :
    Math.max(...lines.map((l) => l.rect.top));
  const line = lines.filter((l) => Math.abs(l.rect.top - top) < 1);
  line.sort((a, b) => gap(x, a.rect) - gap(x, b.rect));
  return line[0].p;
}

// The cell of `panel` at row `r` and column `c` (1 is the first), each clamped to the panel.
function cellAt(panel: Element | null, r: number, c: number): HTMLTableCellElement | undefined {
  const rows = panel ? rowsOf(panel) : [];
  const row = rows[Math.min(Math.max(r, 0), rows.length - 1)];
  return row?.cells[Math.min(Math.max(c, 1), row.cells.length - 1)];
}

// The cell `key` moves focus to from `td`, or null where it stays.
export function arrowTarget(td: HTMLTableCellElement, key: string): HTMLTableCellElement | null {
  const move = MOVES[key];
  if (!move) return null;
  const row = td.parentElement as HTMLTableRowElement;
  const panel = td.closest('.panel') as Element;
  const rows = rowsOf(panel);
  const r = row.sectionRowIndex + move[0];
  const c = td.cellIndex + move[1];
  let next: HTMLTableCellElement | undefined;
  if (r >= 0 && r < rows.length && c >= 1 && c < row.cells.length) {
    next = rows[r].cells[c];
  } else if (move[1] !== 0) {
    const other = move[1] > 0 ? panel.nextElementSibling : panel.previousElementSibling;
    next = cellAt(other, row.sectionRowIndex, move[1] > 0 ? 1 : Infinity);
  } else {
    const box = td.getBoundingClientRect();
    const down = move[0] > 0;
    next = cellAt(panelAcross(panel, down, (box.left + box.right) / 2), down ? 0 : Infinity,
      td.cellIndex);
  }
  return next && next.tabIndex >= 0 ? next : null;
}
