// The web UI in headless Chromium against the real `whet serve` with an empty WHETSTONE_HOME.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { usableCores } from '../support/os.mjs';
import { startServer } from '../support/server.mjs';
import { enforceAppCsp, launchBrowser, screenshot } from '../support/browser.mjs';

const TIMEOUT = 15_000;

async function api(server, cmd, args = {}) {
  const res = await fetch(`${server.url}/api/${cmd}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` },
    body: JSON.stringify(args),
  });
  return { status: res.status, body: await res.json() };
}

function testid(id) {
  return `[data-testid="${id}"]`;
}

describe('web UI served by whet serve', () => {
  let server;
  let browser;
  let page;
  const pageErrors = [];

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
    });
    await enforceAppCsp(page);
    await page.goto(server.page());
    await page.waitForSelector(testid('home'));
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('the token leaves the address bar and a reload in the same tab keeps working', async () => {
    assert.ok(!page.url().includes(server.token), `token still in ${page.url()}`);
    assert.equal(new URL(page.url()).hash, '');
    await page.reload();
    await page.waitForSelector(testid('home'));
    assert.equal(await page.isVisible(testid('error-banner')), false);
    assert.equal(Number(await page.textContent(testid('cpu-cores'))), usableCores());
  });

  test('home screen shows the core count the operating system reports', async () => {
    const cores = await page.textContent(testid('cpu-cores'));
    assert.equal(Number(cores), usableCores());
  });

  test('home screen shows the processor and memory the backend measured', async () => {
    const { status, body: hw } = await api(server, 'hardware');
    assert.equal(status, 200);
    assert.equal(await page.textContent(testid('cpu-model')), hw.cpu_model);
    const gib = (n) => `${(n / 1024 ** 3).toFixed(1)} GB`;
    assert.equal(await page.textContent(testid('ram-total')), gib(hw.ram_total_bytes));
    assert.match(await page.textContent(testid('ram-available')), /^\d+(\.\d)? (GB|MB)$/);
    if (hw.gpus.length === 0) {
      assert.match(await page.textContent(testid('no-gpu')), /No GPU detected/);
    } else {
      assert.equal(await page.locator(`${testid('gpu-list')} li`).count(), hw.gpus.length);
    }
  });

  test('home screen says where runs train and by which program, as the backend decides', async () => {
    const { status, body: devices } = await api(server, 'devices');
    assert.equal(status, 200);
    const shown = await page.textContent(testid('training-device'));
    const label = devices.auto.label.charAt(0).toUpperCase() + devices.auto.label.slice(1);
    assert.ok(shown.includes(label) && shown.includes(devices.auto.precision), shown);
    assert.match(shown, devices.auto.worker === 'cuda' ? /by the GPU worker/ : /by Whetstone itself/);
    if (devices.cuda_worker === null) {
      assert.match(await page.textContent(testid('cuda-worker')), /not installed.*scripts\/build-cuda\.sh/s);
    } else {
      assert.ok((await page.textContent(testid('cuda-worker'))).includes(devices.cuda_worker));
    }
    assert.equal(await page.locator(testid('training-note')).count(), devices.auto.note === null ? 0 : 1);
  });

  test('home screen shows the bundled model exactly when the backend has one', async () => {
    const { body: model } = await api(server, 'default_model');
    if (model === null) {
      assert.match(await page.textContent(testid('no-default-model')), /not on this computer/);
    } else {
      assert.equal(await page.textContent(testid('default-model-name')), model.name);
      assert.match(await page.textContent(testid('default-model-params')), /parameters$/);
      assert.equal(await page.textContent(testid('default-model-license')), model.license ?? 'not stated in the file');
    }
  });

  test('lists on the home screen match the backend', async () => {
    for (const [cmd, name] of [
      ['list_models', 'models'],
      ['list_datasets', 'datasets'],
      ['list_runs', 'runs'],
    ]) {
      const { status, body: rows } = await api(server, cmd);
      assert.equal(status, 200, `${cmd} answered ${status}`);
      const scope = testid(`home-${name}`);
      if (rows.length === 0) {
        assert.ok(await page.isVisible(`${scope} ${testid(`${name}-empty`)}`), `${name}: empty state missing`);
      } else {
        assert.equal(await page.locator(`${scope} ${testid(`${name}-table`)} tbody tr`).count(), rows.length);
      }
    }
  });

  test('navigation reaches every list view and comes back home', async () => {
    await screenshot(page, 'ui-home');
    for (const name of ['models', 'datasets', 'runs', 'evaluate', 'review']) {
      await page.click(testid(`nav-${name}`));
      await page.waitForSelector(testid(`${name}-view`));
      assert.equal(new URL(page.url()).hash, `#/${name}`);
      assert.equal(await page.getAttribute(testid(`nav-${name}`), 'aria-current'), 'page');
      // With nothing trained yet, the new screens say why they are empty and what to do first.
      const empty = { evaluate: 'eval-no-runs', review: 'review-none' }[name];
      if (empty) await page.waitForSelector(`${testid(empty)} >> text=/evaluat|train/i`);
      assert.equal(await page.isVisible(testid('error-banner')), false);
      await screenshot(page, `ui-${name}`);
    }
    await page.click(testid('nav-home'));
    await page.waitForSelector(testid('home'));
    assert.equal(Number(await page.textContent(testid('cpu-cores'))), usableCores());
  });

  test('the navigation is reachable from the keyboard and every link says where it goes', async () => {
    const links = page.locator('nav a');
    assert.equal(await links.count(), 6);
    for (const name of ['home', 'models', 'datasets', 'runs', 'evaluate', 'review']) {
      const link = page.locator(`nav a[data-view="${name}"]`);
      assert.ok((await link.textContent()).trim().length > 0, `${name}: link has no text`);
    }
    await page.focus(testid('nav-datasets'));
    await page.keyboard.press('Enter');
    await page.waitForSelector(testid('datasets-view'));
    assert.equal(await page.getAttribute(testid('nav-datasets'), 'aria-current'), 'page');
    await page.click(testid('nav-home'));
    await page.waitForSelector(testid('home'));
  });

  test('the pages loaded and navigated without script, policy or missing-file errors', async () => {
    assert.deepEqual(pageErrors, []);
    // Served with the app's content security policy: nothing the window would refuse.
    assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
  });

  test('an unknown command comes back from the server as a code and a message', async () => {
    const error = await page.evaluate(async () => {
      const { call } = await import('/transport.js');
      try {
        await call('no_such_command');
        return null;
      } catch (e) {
        return { name: e.name, code: e.code, message: e.message };
      }
    });
    assert.ok(error, 'calling an unknown command should fail');
    assert.equal(error.name, 'ApiError');
    assert.equal(error.code, 'unknown_command');
    assert.match(error.message, /no_such_command/);
  });
});

describe('web UI when the backend goes away', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('a failed call shows a visible error banner with a code and a message, not a blank page', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    await page.goto(server.page());
    await page.waitForSelector(testid('home'));
    assert.equal(await page.isVisible(testid('error-banner')), false);

    await server.stop();
    await page.click(testid('nav-datasets'));
    await page.waitForSelector(`${testid('error-banner')}:visible`);
    assert.equal(await page.textContent(testid('error-code')), 'unreachable');
    assert.match(await page.textContent(testid('error-message')), /Could not reach the Whetstone server/);
    assert.ok(await page.isVisible(testid('view-failed')));
    assert.ok(await page.isVisible(testid('nav-home')), 'navigation stays usable');
  });
});

describe('web UI opened without the link whet serve printed', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('a page without the token says to open the printed link', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    await page.goto(`${server.url}/`);
    await page.waitForSelector(`${testid('error-banner')}:visible`);
    assert.equal(await page.textContent(testid('error-code')), 'unauthorized');
    assert.match(await page.textContent(testid('error-message')), /open the link that `whet serve` printed/);
    assert.ok(await page.isVisible(testid('view-failed')));
  });

  test('a page with a wrong token is refused the same way', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    await page.goto(`${server.url}/#token=${'0'.repeat(64)}`);
    await page.waitForSelector(`${testid('error-banner')}:visible`);
    assert.equal(await page.textContent(testid('error-code')), 'unauthorized');
  });
});

/** Relative luminance (0 black … 1 white) of a computed CSS colour such as `rgb(17, 24, 27)`. */
function luminance(color) {
  const [r, g, b] = color.match(/[\d.]+/g).slice(0, 3).map((c) => {
    const v = Number(c) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

describe('web UI themes', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('the page is dark when the system prefers dark, light when it prefers light', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(server.page());
    await page.waitForSelector(testid('home'));
    const colours = () =>
      page.evaluate(() => {
        const card = document.querySelector('[data-testid="hardware"]');
        return {
          page: getComputedStyle(document.body).backgroundColor,
          card: getComputedStyle(card).backgroundColor,
          text: getComputedStyle(card).color,
        };
      });
    const dark = await colours();
    assert.ok(luminance(dark.page) < 0.05, `dark page background is ${dark.page}`);
    assert.ok(luminance(dark.card) < 0.05, `dark card background is ${dark.card}`);
    assert.ok(luminance(dark.text) > 0.6, `text on a dark card is ${dark.text}`);
    await screenshot(page, 'ui-home-dark');

    // Following the system means following it live, without a reload.
    await page.emulateMedia({ colorScheme: 'light' });
    const light = await colours();
    assert.ok(luminance(light.page) > 0.8, `light page background is ${light.page}`);
    assert.ok(luminance(light.text) < 0.1, `text on a light card is ${light.text}`);
    await page.close();
  });
});

describe('web UI runs screen with a real training run', () => {
  // Where scripts/setup.sh puts the starter model, found as the app finds it.
  const bundled =
    process.env.WHETSTONE_DEFAULT_MODEL ||
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'whetstone', 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf');
  let server;
  let browser;
  let run;

  before(async () => {
    assert.ok(existsSync(bundled), `the bundled model ${bundled} is missing; scripts/setup.sh installs it`);
    server = await startServer();
    browser = await launchBrowser();
    // The server only reads files inside its home folder, so the model and the data go there.
    const model = join(server.home, 'SmolLM2-135M-Instruct.Q4_1.gguf');
    copyFileSync(bundled, model);
    const row = (q, a) => JSON.stringify({ prompt: q, response: a });
    const data = join(server.home, 'tiny.jsonl');
    writeFileSync(data, [row('What is two plus two?', 'Four.'), row('Name a colour.', 'Blue.'), row('Say hello.', 'Hello!')].join('\n'));
    const val = join(server.home, 'tiny-val.jsonl');
    writeFileSync(val, [row('What is one plus one?', 'Two.'), row('Name a fruit.', 'An apple.')].join('\n'));
    const started = await api(server, 'start_run', {
      model,
      data,
      val,
      settings: { steps: 3, batch: 1, 'max-len': 64, 'eval-every': 2 },
    });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    // Wait for the run to end, so the chart has every training step and both evaluations.
    const deadline = Date.now() + 240_000;
    for (;;) {
      ({ body: run } = await api(server, 'get_run', { id: started.body.id }));
      if (!['queued', 'running'].includes(run.status)) break;
      if (Date.now() > deadline) throw new Error(`run still ${run.status} after 240 s`);
      await new Promise((r) => setTimeout(r, 500));
    }
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('a run with metrics gets a uPlot loss chart with its description', async () => {
    assert.equal(run.status, 'completed', `run ended ${run.status}: ${run.error}`);
    const { body: metrics } = await api(server, 'run_metrics', { id: run.id });
    const trainSteps = metrics.filter((m) => (m.kind ?? 'train') === 'train').length;
    const evals = metrics.filter((m) => m.kind === 'eval').length;
    assert.equal(trainSteps, 3);
    assert.ok(evals >= 1, 'the run evaluated at least once');

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(TIMEOUT);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await enforceAppCsp(page);
    await page.goto(server.page());
    await page.waitForSelector(testid('home'));
    await page.click(testid('nav-runs'));
    await page.waitForSelector(testid('runs-view'));
    assert.equal(await page.locator(`${testid('runs-table')} tbody tr`).count(), 1);

    const chart = `${testid(`run-${run.id}`)} ${testid('run-chart')}`;
    // uPlot marks the chart once it has painted the data.
    await page.waitForSelector(`${chart}[data-rendered="true"] canvas`);
    assert.equal(await page.getAttribute(chart, 'role'), 'img');
    assert.match(await page.getAttribute(chart, 'aria-label'), /^Training loss \(line\) and validation loss \(red dots\) over 3 steps$/);
    assert.ok(await page.isVisible(`${chart} .uplot`), 'uPlot drew its chart');
    const legend = await page.textContent(`${chart} .u-legend`);
    assert.match(legend, /Training loss/);
    assert.match(legend, /Validation loss/);
    // Something was painted on the canvas, not just an empty frame.
    const painted = await page.$eval(`${chart} canvas`, (canvas) => {
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) n++;
      return n;
    });
    assert.ok(painted > 500, `only ${painted} pixels painted`);
    // A finished run offers nothing to pause, stop or resume.
    const controls = ['pause_run', 'stop_run', 'resume_run'].map((c) => `${testid(`run-${run.id}`)} ${testid(`run-${c}`)}`);
    assert.equal(await page.locator(controls.join(', ')).count(), 0);
    await screenshot(page, 'ui-runs-chart');
    assert.deepEqual(errors, []);
    assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
    await page.close();
  });

  test('a finished run exports to GGUF from its card, with the check of the exported file beside the app', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    page.setDefaultTimeout(TIMEOUT);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await enforceAppCsp(page);
    await page.goto(server.page());
    await page.waitForSelector(testid('home'));
    await page.click(testid('nav-runs'));
    const card = testid(`run-${run.id}`);
    await page.click(`${card} ${testid('run-export')} summary`);
    await page.check(`${card} ${testid('export-format-gguf')}`);
    await page.selectOption(`${card} ${testid('export-quant')}`, 'q8_0');
    const out = join(server.home, 'exports', 'smollm2-tuned');
    await page.fill(`${card} ${testid('export-folder')}`, out);
    await page.click(`${card} ${testid('export-start')}`);
    await page.waitForSelector(`${card} ${testid('export-report')}`, { timeout: 300_000 });
    assert.equal(await page.textContent(`${card} ${testid('export-out')}`), out);
    const files = readdirSync(out);
    assert.ok(files.some((f) => f.endsWith('-q8_0.gguf')), files.join(', '));
    assert.ok(files.includes('adapter-lora.gguf') && files.includes('README.md'), files.join(', '));
    assert.match(await page.textContent(`${card} ${testid('export-check')}`), /perplexity on 2 held-out rows is \d+\.\d{3} for the exported model/);
    assert.equal(await page.locator(`${card} ${testid('export-answers')} tbody tr`).count(), 2);
    await screenshot(page, 'ui-run-export');

    // The same folder again is refused with its code, and nothing in it changes.
    const before = readdirSync(out).sort();
    await page.click(`${card} ${testid('export-start')}`);
    await page.waitForSelector(testid('error-banner'));
    assert.match(await page.textContent(testid('error-banner')), /folder_not_empty/);
    assert.deepEqual(readdirSync(out).sort(), before);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
