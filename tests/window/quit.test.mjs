// Quitting the desktop window while a run trains: the window asks first, "Keep Whetstone open"
// keeps it, "Quit and keep training" closes it while the run's worker goes on, and the app opened
// again finds the run still training and follows it. Run under `xvfb-run -a`; the close button is
// pressed the way a window manager does (tests/support/close-window.c).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { artifactsDir, binary, repoRoot, tempHome } from '../support/paths.mjs';
import { WebDriver } from '../support/webdriver.mjs';
import { writeTinyModel } from '../support/tiny-model.mjs';

const LOCALE = 'C.UTF-8';

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function testid(id) {
  return `[data-testid="${id}"]`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let driver;
let driverLogFd;
const driverLogPath = join(artifactsDir, 'tauri-driver-quit.log');
let webdriver;
let home;
let app;
let closer;
let runId;

/** The run as the CLI reads it from the same home folder, without the window. */
function show(id) {
  const out = execFileSync(binary('whet', 'WHET_BIN'), ['--home', home.path, 'runs', 'show', String(id), '--json'], { encoding: 'utf8' });
  return JSON.parse(out);
}

function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 1).trim().startsWith('Z');
  } catch {
    return false;
  }
}

/** X11 ids of the app's top-level windows (titled Whetstone). */
function appWindows() {
  const tree = execFileSync('xwininfo', ['-root', '-children'], { encoding: 'utf8' });
  return tree
    .split('\n')
    .filter((l) => /"Whetstone"/.test(l))
    .map((l) => l.trim().split(/\s+/)[0]);
}

function pressClose() {
  const windows = appWindows();
  assert.ok(windows.length > 0, 'the app has a window to close');
  for (const w of windows) execFileSync(closer, [w]);
}

async function until(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function shown(css) {
  return until(`${css} to show`, async () => {
    try {
      const el = await webdriver.find(css);
      return (await webdriver.displayed(el)) ? el : null;
    } catch {
      return null;
    }
  });
}

async function openApp() {
  await webdriver.newSession(app);
  await shown(testid('home'));
}

/** The run's card as the window shows it. */
function card(id) {
  return webdriver.execute(
    `const card = document.querySelector(arguments[0]);
     const chart = card?.querySelector('[data-testid="run-chart"]');
     const m = chart && /over (\\d+) steps/.exec(chart.getAttribute('aria-label') ?? '');
     return { steps: m ? Number(m[1]) : 0, status: card?.querySelector('[data-testid="run-status"]')?.textContent ?? '' };`,
    [testid(`run-${id}`)],
  );
}

before(async () => {
  if (!process.env.DISPLAY) throw new Error('no X display: run this test under `xvfb-run -a`');
  app = binary('whetstone', 'WHETSTONE_APP_BIN');
  const build = mkdtempSync(join(os.tmpdir(), 'close-window-'));
  closer = join(build, 'close-window');
  const cc = spawnSync('cc', ['-o', closer, join(repoRoot, 'tests', 'support', 'close-window.c'), '-lX11'], { encoding: 'utf8' });
  assert.equal(cc.status, 0, `building close-window needs cc and the X11 headers: ${cc.stderr}`);
  home = tempHome();
  const port = await freePort();
  const nativePort = await freePort();
  mkdirSync(artifactsDir, { recursive: true });
  driverLogFd = openSync(driverLogPath, 'w');
  driver = spawn(process.env.TAURI_DRIVER ?? join(os.homedir(), '.cargo', 'bin', 'tauri-driver'), ['--port', String(port), '--native-port', String(nativePort)], {
    env: { ...process.env, WHETSTONE_HOME: home.path, LANG: LOCALE, LC_ALL: LOCALE },
    stdio: ['ignore', driverLogFd, driverLogFd],
  });
  const base = `http://127.0.0.1:${port}`;
  await until('tauri-driver', async () => {
    try {
      return (await fetch(`${base}/status`)).ok;
    } catch {
      return false;
    }
  });
  webdriver = new WebDriver(base);
  await openApp();
});

after(async () => {
  try {
    if (runId !== undefined) {
      const r = show(runId);
      if (['running', 'queued'].includes(r.status)) {
        execFileSync(binary('whet', 'WHET_BIN'), ['--home', home.path, 'runs', 'stop', String(runId)]);
        await until('the run to stop', () => !['running', 'queued'].includes(show(runId).status));
      }
    }
    await webdriver?.quit().catch(() => {});
  } finally {
    if (driver && driver.exitCode === null) {
      const exited = new Promise((resolve) => driver.once('exit', resolve));
      driver.kill('SIGTERM');
      const timer = setTimeout(() => driver.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (driverLogFd !== undefined) closeSync(driverLogFd);
    home?.cleanup();
  }
});

test('closing the window while a run trains asks first; keeping it open keeps everything as it was', async () => {
  const model = writeTinyModel(join(home.path, 'tiny-model'));
  const data = join(home.path, 'rows.jsonl');
  const rows = Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `Say ${i}`, response: `Number ${i} said.` }));
  writeFileSync(data, rows.join('\n') + '\n');
  const started = await webdriver.executeAsync(
    `const done = arguments[arguments.length - 1];
     window.__TAURI_INTERNALS__.invoke('call', { command: 'start_run', args: arguments[0] })
       .then((run) => done({ run }), (error) => done({ error }));`,
    [{ model, data, settings: { steps: 100000, batch: 2, 'max-len': 64, threads: 1, 'save-every': 20 } }],
  );
  assert.ok(started.run, `start_run failed: ${JSON.stringify(started.error)}`);
  runId = started.run.id;
  await webdriver.click(await webdriver.find(testid('nav-runs')));
  await until('the curve to grow', async () => (await card(runId)).steps >= 5);

  pressClose();
  await shown(testid('quit-dialog'));
  const title = await webdriver.text(await webdriver.find('#quit-title'));
  assert.equal(title, `Run #${runId} is still training`);
  writeFileSync(join(artifactsDir, 'window-quit.png'), await webdriver.screenshot());
  await webdriver.click(await webdriver.find(testid('quit-stay')));
  await until('the dialog to close', async () => !(await webdriver.execute('return document.querySelector("dialog[open]") !== null')));
  // The window is still there and the card still follows the run.
  const before = (await card(runId)).steps;
  await until('the card to keep following', async () => (await card(runId)).steps > before);
  assert.equal(appWindows().length > 0, true);
});

test('"Quit and keep training" closes the app; the worker trains on and the app opened again follows it', async () => {
  pressClose();
  await shown(testid('quit-dialog'));
  await shown(testid('quit-keep-training'));
  // The click ends the app, and with it the page that would answer a WebDriver click: pressed
  // from the page a moment after this call has returned.
  await webdriver.execute(`setTimeout(() => document.querySelector('${testid('quit-keep-training')}').click(), 100); return true;`);
  await until('the window to close', () => appWindows().length === 0);
  await webdriver.quit().catch(() => {});

  const r = show(runId);
  assert.equal(r.status, 'running', JSON.stringify(r));
  assert.ok(alive(r.pid), `the worker ${r.pid} outlived the app`);
  await until('the worker to train on without the app', () => show(runId).step > r.step + 5);

  await openApp();
  await webdriver.click(await webdriver.find(testid('nav-runs')));
  const seen = await until('the card to pick the run up', async () => {
    const c = await card(runId);
    return c.status === 'training' && c.steps > r.step ? c : null;
  });
  // And it keeps following it live.
  await until('the reopened card to follow', async () => (await card(runId)).steps > seen.steps);
  writeFileSync(join(artifactsDir, 'window-reopened.png'), await webdriver.screenshot());
});

test('"Pause it and quit" pauses the run at a checkpoint and closes the app', async () => {
  pressClose();
  await shown(testid('quit-pause'));
  await webdriver.execute(`setTimeout(() => document.querySelector('${testid('quit-pause')}').click(), 100); return true;`);
  await until('the window to close', () => appWindows().length === 0);
  await webdriver.quit().catch(() => {});
  const r = await until('the run to pause', () => {
    const now = show(runId);
    return now.status === 'paused' ? now : null;
  });
  assert.equal(r.pid, null);
  assert.ok(r.step > 0);
});
