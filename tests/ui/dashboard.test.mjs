// The run dashboard in headless Chromium against the real `whet serve`, with a tiny random model:
// the phases before the first step, the growing curve, pause and resume, the three ways to stop
// (keep training, stop keeping the best and last checkpoints, discard after a confirmation), a
// warning the engine gives, and two runs' curves on one chart.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../support/server.mjs';
import { enforceAppCsp, launchBrowser, screenshot } from '../support/browser.mjs';
import { writeTinyModel } from '../support/tiny-model.mjs';

const TIMEOUT = 20_000;

function testid(id) {
  return `[data-testid="${id}"]`;
}

async function api(server, cmd, args = {}) {
  const res = await fetch(`${server.url}/api/${cmd}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` },
    body: JSON.stringify(args),
  });
  return { status: res.status, body: await res.json() };
}

const row = (prompt, response) => JSON.stringify({ prompt, response });

function writeData(dir) {
  const train = [
    row('Where is my order 1001?', 'It left the warehouse today and arrives on Friday.'),
    row('Can I change my delivery address?', 'Yes, until the parcel leaves the warehouse.'),
    row('How do I return a pair of shoes?', 'Print the label from your account and drop the box at any post office.'),
    row('Do you ship abroad?', 'We ship to every country in the European Union.'),
    row('How long does a refund take?', 'Refunds reach your card within five working days.'),
    row('Is the blue jacket in stock?', 'Yes, in every size but XL.'),
    row('Can I pay with a gift card?', 'Yes, enter its code at checkout.'),
    row('Do you have a shop in Lyon?', 'No, we only sell online.'),
  ];
  const val = [
    row('How do I cancel an order?', 'Open the order in your account and press Cancel.'),
    row('Can I order by phone?', 'No, orders are taken on the website only.'),
  ];
  writeFileSync(join(dir, 'train.jsonl'), train.join('\n') + '\n');
  writeFileSync(join(dir, 'val.jsonl'), val.join('\n') + '\n');
  return { data: join(dir, 'train.jsonl'), val: join(dir, 'val.jsonl') };
}

describe('the run dashboard', () => {
  let server;
  let browser;
  let page;
  let model;
  let files;
  // Run ids by role.
  const ids = {};
  const pageErrors = [];

  async function start(settings) {
    const started = await api(server, 'start_run', { model, ...files, settings: { batch: 2, 'max-len': 64, threads: 1, ...settings } });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    return started.body.id;
  }

  async function run(id) {
    return (await api(server, 'get_run', { id })).body;
  }

  /** Waits until the backend says the run has gone past `step`. */
  async function pastStep(id, step) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await run(id);
      if (r.step > step) return r;
      if (!['queued', 'running'].includes(r.status)) throw new Error(`run ${id} is ${r.status} at step ${r.step}: ${r.error}`);
      if (Date.now() > deadline) throw new Error(`run ${id} stayed at step ${r.step}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // The page was opened through the printed link once; the tab keeps the token from then on.
  async function openRun(id) {
    await page.goto(`${server.url}/#/runs/${id}`);
    await page.reload();
    await page.waitForSelector(testid(`run-${id}`));
  }

  const card = (id) => testid(`run-${id}`);
  const statusOf = (id) => page.textContent(`${card(id)} ${testid('run-status')}`);

  before(async () => {
    server = await startServer();
    model = writeTinyModel(join(server.home, 'tiny-model'));
    files = writeData(server.home);
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    page = await context.newPage();
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
    for (const id of Object.values(ids)) await api(server, 'stop_run', { id }).catch(() => {});
    await browser?.close();
    await server?.close();
  });

  test('the phases tick with their times and the curve grows past 20 points', async () => {
    ids.long = await start({ steps: 100000, patience: 0, 'eval-every': 5, 'save-every': 10, 'keep-checkpoints': 1, lr: 0.002 });
    await openRun(ids.long);
    for (const phase of ['loading_model', 'reading_data', 'first_step']) {
      const item = `${card(ids.long)} ${testid(`phase-${phase}`)}`;
      await page.waitForSelector(`${item}[data-state="done"]`);
      assert.match(await page.textContent(`${item} ${testid('phase-time')}`), /^\d+(\.\d)? s$|^\d+ min \d+ s$/);
    }
    // The order is the order the work happens in.
    const order = await page.$$eval(`${card(ids.long)} ${testid('run-phases')} li`, (lis) => lis.map((li) => li.dataset.testid));
    assert.deepEqual(order, ['phase-loading_model', 'phase-reading_data', 'phase-first_step']);
    // What the card shows came from the worker: the backend's history has the same phases.
    const { body: series } = await api(server, 'run_series', { id: ids.long });
    assert.deepEqual(
      series.phases.filter((e) => e.type === 'phase_done').map((e) => e.phase),
      ['loading_model', 'reading_data', 'first_step'],
    );

    const chart = `${card(ids.long)} ${testid('run-chart')}`;
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.getAttribute('data-points') ?? 0) >= 20, chart);
    await page.waitForSelector(`${chart}[data-rendered="true"] canvas`);
    await screenshot(page, 'dashboard-phases', card(ids.long));
  });

  test('pause stops after a checkpoint and resume continues from it', async () => {
    await page.click(`${card(ids.long)} ${testid('run-pause_run')}`);
    await page.waitForSelector(`${card(ids.long)} ${testid('run-status')}:text-is("paused")`);
    const paused = await run(ids.long);
    assert.equal(paused.status, 'paused');
    await page.click(`${card(ids.long)} ${testid('run-resume_run')}`);
    await page.waitForSelector(`${card(ids.long)} ${testid('run-status')}:text-is("training")`);
    await pastStep(ids.long, paused.step + 10);
    // The resumed session went through its phases again.
    await page.waitForSelector(`${card(ids.long)} ${testid('phase-first_step')}[data-state="done"]`);
    const chart = `${card(ids.long)} ${testid('run-chart')}`;
    await page.waitForFunction(
      ([sel, step]) => {
        const m = /over (\d+) steps/.exec(document.querySelector(sel)?.getAttribute('aria-label') ?? '');
        return m && Number(m[1]) > step;
      },
      [chart, paused.step + 10],
    );
  });

  test('Stop asks first: keep training leaves the run going', async () => {
    await page.click(`${card(ids.long)} ${testid('run-stop_run')}`);
    await page.waitForSelector(`${card(ids.long)} ${testid('stop-choice')}`);
    // The first choice has the keyboard focus.
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'stop-keep-training');
    await screenshot(page, 'dashboard-stop', card(ids.long));
    const before = await run(ids.long);
    await page.click(`${card(ids.long)} ${testid('stop-keep-training')}`);
    await page.waitForSelector(`${card(ids.long)} ${testid('stop-choice')}`, { state: 'detached' });
    await pastStep(ids.long, before.step + 5);
    assert.equal(await statusOf(ids.long), 'training');
    // Escape closes the choice as well.
    await page.click(`${card(ids.long)} ${testid('run-stop_run')}`);
    await page.keyboard.press('Escape');
    await page.waitForSelector(`${card(ids.long)} ${testid('stop-choice')}`, { state: 'detached' });
    assert.equal((await run(ids.long)).status, 'running');
  });

  test('Stop and keep the best and last checkpoints: both stay on disk and are named on the card', async () => {
    await page.click(`${card(ids.long)} ${testid('run-stop_run')}`);
    await page.click(`${card(ids.long)} ${testid('stop-keep-best')}`);
    await page.waitForSelector(`${card(ids.long)} ${testid('run-status')}:text-is("stopped")`);
    const stopped = await run(ids.long);
    assert.equal(stopped.status, 'stopped');
    const { body: f } = await api(server, 'run_files', { id: ids.long });
    assert.ok(f.best, JSON.stringify({ stopped, f }));
    assert.equal(f.best.step, stopped.best_step, 'the best evaluation has its checkpoint');
    assert.equal(f.last.step, stopped.step, 'the step it stopped at has its checkpoint');
    for (const c of [f.best, f.last]) assert.ok(existsSync(join(c.path, 'manifest.json')), `${c.path} is whole`);
    assert.ok(existsSync(join(f.adapter.path, 'adapter_model.safetensors')));

    const panel = `${card(ids.long)} ${testid('run-files')}`;
    await page.waitForSelector(`${panel} ${testid('files-best')}`);
    assert.equal(Number(await page.textContent(`${panel} ${testid('best-step')}`)), f.best.step);
    if (f.best.step !== f.last.step) {
      assert.equal(Number(await page.textContent(`${panel} ${testid('last-step')}`)), f.last.step);
      assert.equal(await page.textContent(`${panel} ${testid('files-last')} ${testid('path')}`), f.last.path);
    } else {
      assert.match(await page.textContent(`${panel} ${testid('files-best')}`), /also the last/);
    }
    assert.equal(await page.textContent(`${panel} ${testid('files-best')} ${testid('path')}`), f.best.path);
    assert.match(await page.textContent(`${panel} ${testid('files-adapter')}`), new RegExp(`the best evaluation's, step ${f.best.step}`));
    // In a browser the folder cannot be opened: its path is copied instead.
    assert.equal(await page.locator(`${panel} ${testid('open-folder')}`).count(), 0);
    await page.click(`${panel} ${testid('files-folder')} ${testid('copy-path')}`);
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), f.folder);
    await screenshot(page, 'dashboard-stopped', card(ids.long));
  });

  test('Discard this run: after a confirmation naming what goes and the space, the files are deleted and the run marked', async () => {
    ids.doomed = await start({ steps: 100000, 'save-every': 5, 'keep-checkpoints': 2, lr: 0.002 });
    await pastStep(ids.doomed, 12);
    await openRun(ids.doomed);
    const c = card(ids.doomed);
    await page.click(`${c} ${testid('run-stop_run')}`);
    await page.click(`${c} ${testid('stop-discard')}`);
    await page.waitForSelector(`${c} ${testid('discard-summary')}`);
    const { body: before } = await api(server, 'run_files', { id: ids.doomed });
    const listed = await page.locator(`${c} ${testid('discard-list')} li code`).allTextContents();
    assert.ok(listed.includes(join(before.folder, 'checkpoints')) && listed.includes(join(before.folder, 'events.jsonl')), listed.join(', '));
    assert.match(await page.textContent(`${c} ${testid('discard-summary')}`), new RegExp(before.folder.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.match(await page.textContent(`${c} ${testid('discard-bytes')}`), /^\d+(\.\d)? (KB|MB|GB)$|^\d+ bytes$/);
    // Nothing has happened yet: the run trains on until the confirmation.
    assert.equal((await run(ids.doomed)).status, 'running');
    assert.ok(existsSync(before.folder));
    await screenshot(page, 'dashboard-discard', c);

    await page.click(`${c} ${testid('discard-confirm')}`);
    await page.waitForSelector(`${c} ${testid('run-status')}:text-is("discarded")`);
    assert.match(await page.textContent(`${c} ${testid('run-discarded')}`), /deleted, .+ freed, and the empty run folder removed/);
    assert.ok(!existsSync(before.folder), 'the run folder is gone');
    const after = await run(ids.doomed);
    assert.equal(after.status, 'discarded');
    assert.equal(after.pid, null);
    // The model and the data, outside the run folder, are untouched.
    assert.ok(existsSync(join(model, 'model.safetensors')) && existsSync(files.data));
    // A second discard is refused with its code.
    const again = await api(server, 'discard_run', { id: ids.doomed });
    assert.equal(again.body.code, 'already_discarded');
    delete ids.doomed;
  });

  test('a warning from the engine is shown in plain words with its step, newest first', async () => {
    // A learning rate so large that the weights overflow: the guard skips the steps whose loss is
    // not a number and ends the run after three in a row.
    ids.wild = await start({ steps: 50, lr: 1e30, 'max-bad-steps': 3 });
    await openRun(ids.wild);
    const c = card(ids.wild);
    await page.waitForSelector(`${c} ${testid('run-status')}:text-is("failed")`, { timeout: 60_000 });
    await page.waitForSelector(`${c} ${testid('run-warning')}[data-code="bad_step"]`);
    const items = await page.$$eval(`${c} ${testid('run-warning')}`, (lis) =>
      lis.map((li) => ({ code: li.dataset.code, step: Number(li.querySelector('[data-testid="warning-step"]')?.textContent.replace(/\D/g, '') ?? 0), text: li.textContent })),
    );
    const bad = items.filter((w) => w.code === 'bad_step');
    assert.ok(bad.length >= 3, JSON.stringify(items));
    assert.deepEqual(bad.map((w) => w.step), bad.map((w) => w.step).sort((a, b) => b - a), 'newest first');
    assert.match(bad[0].text, /A step was skipped/);
    assert.match(bad[0].text, /was not a finite number, so the step was skipped/);
    const { body: events } = await api(server, 'run_events', { id: ids.wild });
    const logged = events.events.filter((e) => e.type === 'warning' && e.code === 'bad_step').map((e) => e.step);
    assert.deepEqual(bad.map((w) => w.step), logged.reverse(), 'the same warnings the worker logged');
    delete ids.wild;
  });

  test('two runs overlaid on one chart with their names in the legend', async () => {
    const other = await start({ steps: 30, lr: 0.01 });
    const deadline = Date.now() + 60_000;
    while ((await run(other)).status !== 'completed') {
      assert.ok(Date.now() < deadline, 'the second run did not finish');
      await new Promise((r) => setTimeout(r, 200));
    }
    await page.goto(`${server.url}/#/runs`);
    await page.reload();
    await page.waitForSelector(testid('runs-table'));
    assert.match(await page.textContent(testid('compare-hint')), /Tick two or more runs/);
    await page.check(testid(`compare-${ids.long}`));
    await page.check(testid(`compare-${other}`));
    const chart = `${testid('runs-overlay')} ${testid('overlay-chart')}`;
    await page.waitForSelector(`${chart}[data-rendered="true"][data-runs="2"] canvas`);
    const legend = await page.textContent(`${chart} .u-legend`);
    assert.match(legend, new RegExp(`Run #${ids.long}`));
    assert.match(legend, new RegExp(`Run #${other}`));
    const colours = await page.$$eval(`${chart} .u-legend .u-series:not(:first-child) .u-marker`, (ms) => ms.map((m) => getComputedStyle(m).borderColor));
    assert.equal(new Set(colours).size, 2, `distinct colours: ${colours}`);
    // The discarded run cannot be picked.
    const discarded = (await api(server, 'list_runs')).body.find((r) => r.status === 'discarded');
    assert.ok(await page.isDisabled(testid(`compare-${discarded.id}`)));
    await screenshot(page, 'runs-overlay', testid('runs-compare'));

    // The same chart in the dark theme keeps the lines apart and readable.
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForSelector(`${chart}[data-rendered="true"] canvas`);
    const dark = await page.$$eval(`${chart} .u-legend .u-series:not(:first-child) .u-marker`, (ms) => ms.map((m) => getComputedStyle(m).borderColor));
    assert.equal(new Set(dark).size, 2);
    assert.notDeepEqual(dark, colours, 'the dark theme has its own colours');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  test('the dashboard ran without script or content-policy errors', async () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
  });
});
