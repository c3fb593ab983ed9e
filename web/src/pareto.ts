// The Pareto front of points where less is better on both axes (cost x, loss y): the points
// no other point beats on both. Sorted by x, a point is on the front when its y is below every
// y before it.
export interface Point {
  x: number;
  y: number;
  id: string;
}

export function paretoFront(points: Point[]): Point[] {
  const sorted = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
    .sort((a, b) => a.x - b.x || a.y - b.y);
  const front: Point[] = [];
  let best = Infinity;
  for (const p of sorted) {
    if (p.y < best) {
      front.push(p);
      best = p.y;
    }
  }
  return front;
}

// Exponential moving average with TensorBoard's debiasing: weight in [0, 1), 0 is no smoothing.
export function smooth(values: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) return values;
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    n++;
    return last / (1 - weight ** n);
  });
}
