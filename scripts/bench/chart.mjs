#!/usr/bin/env node
// Frame times of the run card's loss chart with 100,000 steps: the real LossChart (ui/bench/ builds
// a page with it alone, like the app is built) in headless Chromium, the way browser tests run it.
//
// Usage: node scripts/bench/chart.mjs            (needs ui/node_modules and tests/node_modules)
//
// Scenarios, each timed with requestAnimationFrame (the time between successive frames, with the
// frame-rate limit off so that a frame takes as long as its work, not a fixed 16.7 ms):
//   live      100,000 steps pushed 100 per frame, as pushed updates arrive, appended to one chart
//   thinned   a 100,000-step history thinned as run_series sends it (1000 buckets), then a step a frame
//   unthinned the same history sent whole (what the page would get without run_series), then a step a frame
//   control   no chart, a line of text changed each frame: what any frame costs on this machine
// Prints the median and 99th percentile of each, and the frame that drew the whole history.
// The target: p99 under 16 ms on this machine.
//
// Environment: CHROMIUM_PATH (default /usr/bin/chromium).

import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, 'target', 'bench-chart');
const require = createRequire(join(root, 'tests', 'package.json'));
const { chromium } = require('playwright-core');

const STEPS = 100_000;
const PER_BATCH = 100;

function build() {
  const vite = join(root, 'ui', 'node_modules', '.bin', 'vite');
  if (!existsSync(vite)) throw new Error('ui/node_modules is missing: run `npm ci` in ui/ first');
  execFileSync(vite, ['build', '--config', 'bench/vite.config.ts', '--logLevel', 'warn'], { cwd: join(root, 'ui'), stdio: 'inherit' });
}

function serve(dir) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
  const server = createServer((req, res) => {
    const path = join(dir, decodeURIComponent(new URL(req.url, 'http://x').pathname));
    if (!path.startsWith(dir) || !existsSync(path) || !statSync(path).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' });
    createReadStream(path).pipe(res);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function report(name, times, extra = '') {
  const sorted = [...times].sort((a, b) => a - b);
  const f = (x) => x.toFixed(1).padStart(6);
  console.log(
    `${name.padEnd(10)} frames ${String(times.length).padStart(5)}  median ${f(percentile(sorted, 50))} ms  p99 ${f(percentile(sorted, 99))} ms  max ${f(sorted.at(-1))} ms${extra}`,
  );
  return percentile(sorted, 99);
}

build();
const server = await serve(out);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-frame-rate-limit', '--disable-gpu-vsync', '--no-first-run'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 500 } });
  await page.goto(`http://127.0.0.1:${server.address().port}/chart.html`);
  await page.waitForSelector('body[data-ready="true"]');
  console.log(`LossChart, ${STEPS.toLocaleString('en-US')} steps, Chromium ${browser.version()}, ${new Date().toISOString()}`);
  // A warm-up run, so that the timed ones do not measure the JIT compiling.
  await page.evaluate(() => window.bench.live(20_000, 100));

  const control = await page.evaluate(() => window.bench.control(600));
  report('control', control.times, '  (a line of text changed a frame, no chart: the floor here)');
  const live = await page.evaluate(([n, b]) => window.bench.live(n, b), [STEPS, PER_BATCH]);
  const p99 = [report('live', live.times, `  (${PER_BATCH} steps a frame; ${live.held.train} points held, ${live.drawn} drawn at the end)`)];
  const thinned = await page.evaluate((n) => window.bench.history(n, 1000, 300), STEPS);
  p99.push(report('thinned', thinned.times, `  (history of ${thinned.sent} points drawn in a ${thinned.first.toFixed(1)} ms frame)`));
  const whole = await page.evaluate((n) => window.bench.history(n, 0, 300), STEPS);
  p99.push(report('unthinned', whole.times, `  (history of ${whole.sent} points drawn in a ${whole.first.toFixed(1)} ms frame)`));
  const worst = Math.max(...p99);
  console.log(`target p99 < 16 ms: ${worst < 16 ? 'met' : 'missed'} (worst p99 ${worst.toFixed(1)} ms)`);
} finally {
  await browser.close();
  server.close();
}
