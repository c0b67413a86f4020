// The real desktop binary in a real window (run under `xvfb-run -a` where there is no display),
// driven through tauri-driver and WebKitWebDriver.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { artifactsDir, binary, tempHome } from '../support/paths.mjs';
import { WebDriver } from '../support/webdriver.mjs';
import { usableCores } from '../support/os.mjs';

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

async function waitForDriver(base, child, log) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`tauri-driver exited with ${child.exitCode}: ${log()}`);
    try {
      const res = await fetch(`${base}/status`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`tauri-driver did not answer on ${base} within 20 s: ${log()}`);
}

function driverPath() {
  return process.env.TAURI_DRIVER ?? join(os.homedir(), '.cargo', 'bin', 'tauri-driver');
}

let driver;
let driverLogFd;
const driverLogPath = join(artifactsDir, 'tauri-driver.log');
const driverLog = () => readFileSync(driverLogPath, 'utf8').slice(-2000);
let webdriver;
let home;

before(async () => {
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    throw new Error('no display: run this test under `xvfb-run -a`');
  }
  const app = binary('whetstone', 'WHETSTONE_APP_BIN');
  home = tempHome();
  const port = await freePort();
  const nativePort = await freePort();
  mkdirSync(artifactsDir, { recursive: true });
  // A file rather than a pipe: the app inherits the driver's output, and an open pipe held
  // by a lingering child would keep this process from exiting.
  driverLogFd = openSync(driverLogPath, 'w');
  driver = spawn(driverPath(), ['--port', String(port), '--native-port', String(nativePort)], {
    env: { ...process.env, WHETSTONE_HOME: home.path },
    stdio: ['ignore', driverLogFd, driverLogFd],
  });
  const base = `http://127.0.0.1:${port}`;
  await waitForDriver(base, driver, driverLog);
  webdriver = new WebDriver(base);
  await webdriver.newSession(app);
});

after(async () => {
  try {
    await webdriver?.quit();
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

test('the window opens on the home screen and shows the core count the OS reports', async () => {
  const cores = await webdriver.waitFor('[data-testid="cpu-cores"]');
  assert.equal(Number(await webdriver.text(cores)), usableCores());
  const model = await webdriver.text(await webdriver.find('[data-testid="cpu-model"]'));
  assert.ok(model.trim().length > 0, 'processor name is shown');
  assert.equal(await webdriver.execute('return document.title'), 'Home · Whetstone');
  writeFileSync(join(artifactsDir, 'window-home.png'), await webdriver.screenshot());
});

test('the window talks to the backend over Tauri IPC, not HTTP', async () => {
  const viaIpc = await webdriver.execute('return typeof window.__TAURI_INTERNALS__?.invoke === "function"');
  assert.equal(viaIpc, true);
});

test('navigation to the Models view works inside the window', async () => {
  await webdriver.click(await webdriver.find('[data-testid="nav-models"]'));
  await webdriver.waitFor('[data-testid="models-view"]');
  assert.equal(await webdriver.execute('return location.hash'), '#/models');
  const banner = await webdriver.execute('return document.querySelector("[data-testid=error-banner]").hidden');
  assert.equal(banner, true, 'no error banner on the Models view');
  writeFileSync(join(artifactsDir, 'window-models.png'), await webdriver.screenshot());
});
