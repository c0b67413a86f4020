// A run's loss curve as the chart draws it, kept small however long the run: the backend sends the
// history already thinned (run_series), live steps are appended, and once the arrays outgrow
// MAX_POINTS they are thinned again to each bucket's lowest and highest point, as the backend does.
// So a redraw costs the same at step 100 and at step 100,000, and appending is amortised O(1).

import type { LossPoint } from '../../clients/runs';

/** Training points kept before thinning; a chart is at most a couple of thousand pixels wide. */
export const MAX_POINTS = 2400;
/** Buckets the training line is thinned to (each keeps at most two points). */
export const BUCKETS = 600;
/**
 * Evaluations are drawn as dots 8 pixels wide, each a circle to fill: more than a few hundred
 * overlap into a band and cost most of a frame, so they are thinned sooner.
 */
export const MAX_EVAL_POINTS = 600;
export const EVAL_BUCKETS = 150;

interface Line {
  x: number[];
  y: number[];
}

/** Index of the first x at or after `step` (x is ascending). */
function firstAtOrAfter(x: number[], step: number): number {
  let lo = 0;
  let hi = x.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x[mid] < step) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The lowest and highest point of each of `buckets` runs of consecutive points, in step order. */
export function thin(line: Line, buckets: number): Line {
  const n = line.x.length;
  if (n <= 2 * buckets) return line;
  const out: Line = { x: [], y: [] };
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor((b * n) / buckets);
    const to = Math.floor(((b + 1) * n) / buckets);
    if (to <= from) continue;
    let lo = from;
    let hi = from;
    for (let i = from + 1; i < to; i++) {
      if (line.y[i] < line.y[lo]) lo = i;
      if (line.y[i] > line.y[hi]) hi = i;
    }
    const first = Math.min(lo, hi);
    const last = Math.max(lo, hi);
    out.x.push(line.x[first]);
    out.y.push(line.y[first]);
    if (last !== first) {
      out.x.push(line.x[last]);
      out.y.push(line.y[last]);
    }
  }
  return out;
}

function add(line: Line, step: number, loss: number, max: number, buckets: number): Line {
  // A resumed run repeats the steps after its checkpoint: from the repeated step on, the newer
  // values replace the older ones.
  if (line.x.length > 0 && step <= line.x[line.x.length - 1]) {
    const cut = firstAtOrAfter(line.x, step);
    line.x.length = cut;
    line.y.length = cut;
  }
  line.x.push(step);
  line.y.push(loss);
  return line.x.length > max ? thin(line, buckets) : line;
}

export class LossSeries {
  private train: Line = { x: [], y: [] };
  private evals: Line = { x: [], y: [] };
  /** Bumped by every change, for whoever draws the series. */
  version = $state(0);

  /** Adds points (training steps and evaluations, as they come). */
  append(points: Iterable<LossPoint>): void {
    let changed = false;
    for (const p of points) {
      if (!Number.isFinite(p.loss)) continue;
      if (p.kind === 'train') this.train = add(this.train, p.step, p.loss, MAX_POINTS, BUCKETS);
      else this.evals = add(this.evals, p.step, p.loss, MAX_EVAL_POINTS, EVAL_BUCKETS);
      changed = true;
    }
    if (changed) this.version++;
  }

  /** Whether any training step is in. */
  hasTraining(): boolean {
    return this.train.x.length > 0;
  }

  /** The newest step of the curve. */
  lastStep(): number {
    return Math.max(this.train.x.at(-1) ?? 0, this.evals.x.at(-1) ?? 0);
  }

  /** Points held now (after any thinning). */
  size(): { train: number; eval: number } {
    return { train: this.train.x.length, eval: this.evals.x.length };
  }

  /**
   * uPlot's shape: one x array and a y array per series, aligned, with null where a series has no
   * value at that step (evaluations come at other steps than most training rows). A merge of the
   * two step-ordered lines, so linear in the points held.
   */
  aligned(): [number[], (number | null)[], (number | null)[]] {
    const t = this.train;
    const e = this.evals;
    const xs: number[] = [];
    const ty: (number | null)[] = [];
    const ey: (number | null)[] = [];
    let i = 0;
    let j = 0;
    while (i < t.x.length || j < e.x.length) {
      const a = i < t.x.length ? t.x[i] : Infinity;
      const b = j < e.x.length ? e.x[j] : Infinity;
      const x = Math.min(a, b);
      xs.push(x);
      ty.push(a === x ? t.y[i++] : null);
      ey.push(b === x ? e.y[j++] : null);
    }
    return [xs, ty, ey];
  }
}
