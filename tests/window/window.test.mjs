// The real desktop binary in a real window (run under `xvfb-run -a` where there is no display),
// driven through tauri-driver and WebKitWebDriver.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { artifactsDir, binary, tempHome } from '../support/paths.mjs';
import { WebDriver } from '../support/webdriver.mjs';
import { usableCores } from '../support/os.mjs';
import { writeTinyModel } from '../support/tiny-model.mjs';
import { startHub } from '../support/hub.mjs';

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

// The app runs under the C.UTF-8 locale, whatever this machine's is: it is what a system without
// configured locales has, and the one from which WebKitGTK derives the invalid language "C", which
// once kept the UI's entry module from running at all.
const LOCALE = 'C.UTF-8';

function driverPath() {
  return process.env.TAURI_DRIVER ?? join(os.homedir(), '.cargo', 'bin', 'tauri-driver');
}

let driver;
let driverLogFd;
const driverLogPath = join(artifactsDir, 'tauri-driver.log');
const driverLog = () => readFileSync(driverLogPath, 'utf8').slice(-2000);
let webdriver;
let home;
let hub;
const HUB_REPO = 'whetstone-tests/tiny-llama';

function testid(id) {
  return `[data-testid="${id}"]`;
}

/**
 * Waits for `css` to be rendered and shown. When it is not, the error says what the page holds
 * instead: an entry module that failed leaves the static page with its <noscript> note.
 */
async function waitForShown(css) {
  let element;
  try {
    element = await webdriver.waitFor(css);
  } catch (e) {
    const page = await webdriver.execute(
      "return { title: document.title, language: navigator.language, hash: location.hash, main: (document.querySelector('main') ?? document.body).innerText.slice(0, 800) }",
    );
    throw new Error(`${e.message}; the page has ${JSON.stringify(page)}`);
  }
  assert.equal(await webdriver.displayed(element), true, `${css} is in the page but not shown`);
  const { width, height } = await webdriver.rect(element);
  assert.ok(width > 0 && height > 0, `${css} takes no room: ${width}×${height}`);
  return element;
}

before(async () => {
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    throw new Error('no display: run this test under `xvfb-run -a`');
  }
  // Without the locale the app would fall back to plain C, which WebKitGTK handles, and this
  // suite would no longer check the app's own handling of C.UTF-8.
  const charmap = spawnSync('locale', ['charmap'], { env: { ...process.env, LC_ALL: LOCALE }, encoding: 'utf8' });
  assert.equal(charmap.stdout?.trim(), 'UTF-8', `the ${LOCALE} locale is not available here: ${charmap.stderr ?? charmap.error}`);
  const app = binary('whetstone', 'WHETSTONE_APP_BIN');
  home = tempHome();
  // A loopback hub the wizard downloads its base model from, over the window's Channel.
  hub = await startHub({ [HUB_REPO]: writeTinyModel(join(home.path, 'hub-source')) });
  const port = await freePort();
  const nativePort = await freePort();
  mkdirSync(artifactsDir, { recursive: true });
  // A file rather than a pipe: the app inherits the driver's output, and an open pipe held
  // by a lingering child would keep this process from exiting.
  driverLogFd = openSync(driverLogPath, 'w');
  driver = spawn(driverPath(), ['--port', String(port), '--native-port', String(nativePort)], {
    env: {
      ...process.env,
      WHETSTONE_HOME: home.path,
      LANG: LOCALE,
      LC_ALL: LOCALE,
      HF_ENDPOINT: hub.url,
      HF_HUB_CACHE: join(home.path, 'hf-cache'),
      HF_HOME: join(home.path, 'hf-home'),
      HF_TOKEN: '',
    },
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
    await hub?.close();
    home?.cleanup();
  }
});

test('the window opens on the home screen and shows the core count the OS reports', async () => {
  await waitForShown(testid('home'));
  const cores = await waitForShown(testid('cpu-cores'));
  assert.equal(Number(await webdriver.text(cores)), usableCores());
  const model = await webdriver.text(await waitForShown(testid('cpu-model')));
  assert.ok(model.trim().length > 0, 'processor name is shown');
  for (const name of ['home', 'models', 'datasets', 'runs']) {
    assert.ok((await webdriver.text(await waitForShown(testid(`nav-${name}`)))).trim().length > 0, `${name}: link has no text`);
  }
  assert.equal(await webdriver.execute('return document.title'), 'Home · Whetstone');
  writeFileSync(join(artifactsDir, 'window-home.png'), await webdriver.screenshot());
});

test(`the page gets a valid language tag under ${LOCALE}`, async () => {
  const language = await webdriver.execute('return navigator.language');
  // Intl is what failed on the invalid tag; it canonicalizes a valid one and throws on anything else.
  const canonical = await webdriver.execute('try { return Intl.getCanonicalLocales(navigator.language)[0]; } catch (e) { return String(e); }');
  assert.equal(canonical, 'en-US', `navigator.language is ${JSON.stringify(language)}`);
});

test('the window talks to the backend over Tauri IPC, not HTTP', async () => {
  const viaIpc = await webdriver.execute('return typeof window.__TAURI_INTERNALS__?.invoke === "function"');
  assert.equal(viaIpc, true);
});

test('navigation reaches every list view inside the window and comes back home', async () => {
  for (const name of ['models', 'datasets', 'runs']) {
    await webdriver.click(await webdriver.find(testid(`nav-${name}`)));
    await waitForShown(testid(`${name}-view`));
    assert.equal(await webdriver.execute('return location.hash'), `#/${name}`);
    assert.equal(await webdriver.execute(`return document.querySelector('${testid(`nav-${name}`)}').getAttribute('aria-current')`), 'page');
    assert.equal(await webdriver.displayed(await webdriver.find(testid('error-banner'))), false, `an error banner on the ${name} view`);
    writeFileSync(join(artifactsDir, `window-${name}.png`), await webdriver.screenshot());
  }
  await webdriver.click(await webdriver.find(testid('nav-home')));
  const cores = await waitForShown(testid('cpu-cores'));
  assert.equal(Number(await webdriver.text(cores)), usableCores());
});

test('a run started in the window is followed to its end over a Tauri Channel, its curve growing', async () => {
  // A real run of a tiny random model, started through the window's own IPC; the app starts itself
  // as the worker. The card is told of each step by the backend: nothing reloads the page.
  const model = writeTinyModel(join(home.path, 'tiny-model'));
  const data = join(home.path, 'rows.jsonl');
  const rows = Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `Say ${i}`, response: `Number ${i} said.` }));
  writeFileSync(data, rows.join('\n') + '\n');
  const started = await webdriver.executeAsync(
    `const done = arguments[arguments.length - 1];
     window.__TAURI_INTERNALS__.invoke('call', { command: 'start_run', args: arguments[0] })
       .then((run) => done({ run }), (error) => done({ error }));`,
    [{ model, data, settings: { steps: 12, batch: 2, 'max-len': 64, threads: 1 } }],
  );
  assert.ok(started.run, `start_run failed: ${JSON.stringify(started.error)}`);
  const id = started.run.id;
  await webdriver.click(await webdriver.find(testid('nav-runs')));
  const card = testid(`run-${id}`);
  await waitForShown(card);
  const deadline = Date.now() + 180_000;
  let seen = { steps: 0, status: '' };
  while (Date.now() < deadline) {
    seen = await webdriver.execute(
      `const card = document.querySelector(arguments[0]);
       const chart = card?.querySelector('[data-testid="run-chart"]');
       const m = chart && /over (\\d+) steps/.exec(chart.getAttribute('aria-label') ?? '');
       return { steps: m ? Number(m[1]) : 0, status: card?.querySelector('[data-testid="run-status"]')?.textContent ?? '' };`,
      [card],
    );
    if (seen.status === 'finished') break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(seen.status, 'finished', `the card did not follow the run to its end: ${JSON.stringify(seen)}`);
  assert.equal(seen.steps, 12, 'every step reached the curve');
  const row = await webdriver.execute(
    "return [...document.querySelectorAll('[data-testid=\"runs-table\"] tbody tr')].map((tr) => tr.textContent).join(' | ')",
  );
  assert.match(row, /finished/, `the table shows what the card was told: ${row}`);
  const figures = await webdriver.execute(
    `const card = document.querySelector(arguments[0]);
     return { speed: card.querySelector('[data-testid="run-speed"]')?.textContent ?? '',
              memory: card.querySelector('[data-testid="run-memory"]')?.textContent ?? '' };`,
    [card],
  );
  assert.match(figures.speed, /^[\d,]+ tokens\/s$/, JSON.stringify(figures));
  assert.match(figures.memory, /^\d+(\.\d)? (MB|GB)$/, JSON.stringify(figures));
  writeFileSync(join(artifactsDir, 'window-run.png'), await webdriver.screenshot());
});

test('the new-run wizard goes from a goal to a finished run inside the window', async () => {
  // The same path a person takes: every value typed into the window's own fields, the base model
  // found on the hub and downloaded, each step's Next pressed, and the run started by the
  // preflight's Start button.
  const data = join(home.path, 'wizard-rows.jsonl');
  const rows = Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `What is ${i} plus one?`, response: `It is ${i + 1}.` }));
  writeFileSync(data, rows.join('\n') + '\n');
  const typeInto = async (id, text) => webdriver.type(await waitForShown(testid(id)), text);
  const next = async (step) => {
    await webdriver.click(await webdriver.find(testid('wizard-next')));
    await waitForShown(testid(`wizard-${step}`));
  };

  // The window's storage outlives a test's home folder: a draft left by an earlier run is cleared
  // the way a user does it.
  await webdriver.click(await webdriver.find(testid('nav-new')));
  await webdriver.click(await waitForShown(testid('wizard-start-over')));
  await webdriver.click(await waitForShown(testid('wizard-start-over-yes')));
  await waitForShown(testid('wizard-goal'));
  await typeInto('goal-name', 'Adding one');
  await typeInto('goal-task', 'Say which number comes after the one asked about.');
  await typeInto('goal-input', 'What is 4 plus one?');
  await typeInto('goal-output', 'It is 5.');
  writeFileSync(join(artifactsDir, 'window-wizard-1-goal.png'), await webdriver.screenshot());

  await next('model');
  await typeInto('hub-search-query', 'tiny');
  await webdriver.click(await webdriver.find(testid('hub-search-go')));
  const result = `${testid('hub-result')}[data-repo="${HUB_REPO}"]`;
  await webdriver.click(await waitForShown(`${result} ${testid('download-start')}`));
  // The download's progress comes over a Channel; when it ends the model is chosen.
  const chosen = `${testid('model-option')}.selected[data-kind="installed"]`;
  await waitForShown(chosen);
  assert.match(await webdriver.text(await webdriver.find(chosen)), /tiny-llama/);
  await waitForShown(`${chosen} ${testid('fit-badge')}[data-fit="fits"]`);
  writeFileSync(join(artifactsDir, 'window-wizard-2-model.png'), await webdriver.screenshot());

  await next('data');
  await typeInto('data-import-path', data);
  await webdriver.click(await webdriver.find(testid('data-import-start')));
  await waitForShown(testid('import-report'));
  assert.equal(await webdriver.text(await webdriver.find(testid('import-accepted'))), '16');
  writeFileSync(join(artifactsDir, 'window-wizard-3-data.png'), await webdriver.screenshot());

  await next('settings');
  await webdriver.click(await waitForShown(testid('preset-quick_test')));
  await typeInto('setting-steps-input', '8');
  writeFileSync(join(artifactsDir, 'window-wizard-4-settings.png'), await webdriver.screenshot());

  await next('preflight');
  await waitForShown(testid('preflight-ready'));
  await waitForShown(`${testid('preflight-start-button')}:not([disabled])`);
  writeFileSync(join(artifactsDir, 'window-wizard-5-preflight.png'), await webdriver.screenshot());
  await webdriver.click(await webdriver.find(testid('preflight-start-button')));

  // The launch lands on the new run's card, which follows the run to its end.
  let hash = '';
  for (const until = Date.now() + 20_000; Date.now() < until && !/^#\/runs\/\d+$/.test(hash); ) {
    hash = await webdriver.execute('return location.hash');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(hash, /^#\/runs\/\d+$/, 'Start opens the new run');
  const card = testid(`run-${hash.split('/').pop()}`);
  await waitForShown(card);
  const deadline = Date.now() + 180_000;
  let seen = { status: '', steps: 0, title: '' };
  while (Date.now() < deadline) {
    seen = await webdriver.execute(
      `const card = document.querySelector(arguments[0]);
       const chart = card?.querySelector('[data-testid="run-chart"]');
       const m = chart && /over (\\d+) steps/.exec(chart.getAttribute('aria-label') ?? '');
       return { status: card?.querySelector('[data-testid="run-status"]')?.textContent ?? '', steps: m ? Number(m[1]) : 0,
                title: card?.querySelector('h3')?.textContent ?? '' };`,
      [card],
    );
    if (seen.status === 'finished' && seen.steps === 8) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(seen.status, 'finished', `the wizard's run did not finish in the window: ${JSON.stringify(seen)}`);
  assert.equal(seen.steps, 8, 'the run used the steps typed in the wizard');
  assert.match(seen.title, /Adding one/, 'the run carries the name given in the wizard');
  writeFileSync(join(artifactsDir, 'window-wizard-6-run.png'), await webdriver.screenshot());
});

test('the window offers the system file dialogs and follows dropped files on the data step without errors', async () => {
  // The dialogs need a person and a native drop needs a real drag, so what is checked is the glue:
  // the Browse buttons are there (a browser tab has none), and following drops (an IPC listen the
  // capability must allow) starts without a rejected promise or an error banner.
  // The window's storage outlives a test's home folder: start from an empty draft, as a user does,
  // not from one that names a dataset or a run of an earlier test.
  await webdriver.click(await waitForShown(testid('nav-new')));
  await webdriver.click(await waitForShown(testid('wizard-start-over')));
  await webdriver.click(await waitForShown(testid('wizard-start-over-yes')));
  await waitForShown(testid('wizard-goal'));
  await webdriver.execute(
    `window.__rejections = [];
     window.addEventListener('unhandledrejection', (e) => window.__rejections.push(String(e.reason?.message ?? e.reason)));
     location.hash = '#/new/data';`,
  );
  await waitForShown(testid('data-import-browse'));
  const dropzone = await webdriver.text(await waitForShown(testid('data-dropzone')));
  assert.match(dropzone, /drop a file with examples onto this window/);
  await webdriver.execute("location.hash = '#/new/model'");
  await waitForShown(testid('model-browse-file'));
  await waitForShown(testid('model-browse-folder'));
  await webdriver.execute("location.hash = '#/new/settings'");
  await waitForShown(testid('config-browse-open'));
  await waitForShown(testid('config-browse-save'));
  await webdriver.execute("location.hash = '#/new/data'");
  await waitForShown(testid('data-import-browse'));
  // The listener is registered over IPC after the step shows; give it a moment to answer.
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await webdriver.execute('return window.__rejections'), []);
  const banner = await webdriver.execute(
    `const b = document.querySelector('[data-testid="error-banner"]');
     return b && b.offsetParent !== null ? b.textContent : null;`,
  );
  assert.equal(banner, null, 'an error banner on the data step');
  writeFileSync(join(artifactsDir, 'window-data-step.png'), await webdriver.screenshot());
  await webdriver.execute("location.hash = '#/'");
});
