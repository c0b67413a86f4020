// The run card's curve on a page of its own, driven by scripts/bench/chart.mjs: the real LossChart
// and LossSeries, fed the way the card feeds them (a thinned history, then pushed batches), with
// the time of every frame recorded through requestAnimationFrame.

import { flushSync, mount, unmount } from 'svelte';
import '../src/app.css';
import LossChart from '../src/lib/features/runs/LossChart.svelte';
import { LossSeries, thin } from '../src/lib/features/runs/series.svelte';
import type { LossPoint } from '../src/lib/clients/runs';

/** A plausible curve: falling, noisy, an evaluation every 50 steps. */
function points(from: number, to: number): LossPoint[] {
  const out: LossPoint[] = [];
  for (let s = from; s <= to; s++) {
    const base = 2 + 3 / (1 + s / 2000);
    out.push({ kind: 'train', step: s, loss: base + 0.3 * Math.sin(s * 12.9898) * Math.sin(s * 0.37) });
    if (s % 50 === 0) out.push({ kind: 'eval', step: s, loss: base + 0.1 });
  }
  return out;
}

const frame = (): Promise<number> => new Promise((resolve) => requestAnimationFrame(resolve));

function fresh(): { series: LossSeries; destroy: () => void } {
  const target = document.getElementById('chart')!;
  target.replaceChildren();
  const series = new LossSeries();
  const app = mount(LossChart, { target, props: { series } });
  return { series, destroy: () => void unmount(app) };
}

/** Frame times (ms between successive frames) while `perFrame` runs at the start of each frame. */
async function measure(frames: number, perFrame: (i: number) => void): Promise<number[]> {
  const times: number[] = [];
  let last = await frame();
  for (let i = 0; i < frames; i++) {
    perFrame(i);
    const now = await frame();
    times.push(now - last);
    last = now;
  }
  return times;
}

declare global {
  interface Window {
    bench: Record<string, (...args: number[]) => Promise<unknown>>;
  }
}

window.bench = {
  /** Frames that change one line of text and draw no chart: what any frame costs here. */
  async control(frames: number) {
    const target = document.getElementById('chart')!;
    target.replaceChildren();
    const line = target.appendChild(document.createElement('p'));
    await frame();
    const times = await measure(frames, (i) => (line.textContent = `frame ${i}`));
    target.replaceChildren();
    return { times };
  },
  /** `total` steps pushed `perBatch` at a time, one batch a frame, as pushed updates arrive. */
  async live(total: number, perBatch: number) {
    const { series, destroy } = fresh();
    series.append(points(1, perBatch));
    flushSync();
    await frame();
    await frame();
    const batches = Math.ceil(total / perBatch) - 1;
    const times = await measure(batches, (i) => series.append(points((i + 1) * perBatch + 1, (i + 2) * perBatch)));
    const held = series.size();
    const drawn = Number(document.querySelector('[data-testid="run-chart"]')?.getAttribute('data-points') ?? 0);
    destroy();
    return { times, held, drawn };
  },
  /**
   * A `total`-step history in one go, thinned to `buckets` as run_series thins it (0: unthinned),
   * then `after` frames with one new step each: the frame that draws the history and those after.
   */
  async history(total: number, buckets: number, after: number) {
    const { series, destroy } = fresh();
    await frame();
    const all = points(1, total);
    const train = all.filter((p) => p.kind === 'train');
    const evals = all.filter((p) => p.kind === 'eval');
    const cut = (list: LossPoint[], kind: 'train' | 'eval'): LossPoint[] => {
      if (buckets === 0) return list;
      const t = thin({ x: list.map((p) => p.step), y: list.map((p) => p.loss) }, buckets);
      return t.x.map((step, i) => ({ kind, step, loss: t.y[i] }));
    };
    const history = [...cut(train, 'train'), ...cut(evals, 'eval')];
    const times = await measure(after + 1, (i) => {
      if (i === 0) series.append(history);
      else series.append(points(total + i, total + i));
    });
    destroy();
    return { times: times.slice(1), first: times[0], sent: history.length };
  },
};
document.body.dataset.ready = 'true';
