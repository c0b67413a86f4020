// The new-run wizard in headless Chromium against the real `whet serve`, with a tiny random model:
// from the goal through the model, the data (with a bad row), the settings and the preflight to
// Start, and then the run's curve growing on the Runs screen.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
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

/** Twelve good rows, one repeated (for the cleaning to find) and one with an empty answer on line 5. */
function writeData(dir) {
  const lines = [
    row('Where is my order 1001?', 'It left the warehouse today and arrives on Friday.'),
    row('Can I change my delivery address?', 'Yes, until the parcel leaves the warehouse.'),
    row('How do I return a pair of shoes?', 'Print the label from your account and drop the box at any post office.'),
    row('Do you ship abroad?', 'We ship to every country in the European Union.'),
    row('What is the capital of Mars?', ''),
    row('How long does a refund take?', 'Refunds reach your card within five working days.'),
    row('Is the blue jacket in stock?', 'Yes, in every size but XL.'),
    row('Can I pay with a gift card?', 'Yes, enter its code at checkout.'),
    row('Where is my order 1001?', 'It left the warehouse today and arrives on Friday.'),
    row('Do you have a shop in Lyon?', 'No, we only sell online.'),
    row('How do I cancel an order?', 'Open the order in your account and press Cancel.'),
    row('Why was my card declined?', 'Your bank refused the payment; ask it why or try another card.'),
    row('Can I order by phone?', 'No, orders are taken on the website only.'),
    row('Do you sell gift wrapping?', 'Yes, for two euros an item.'),
  ];
  const path = join(dir, 'support-replies.jsonl');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

describe('the new-run wizard', () => {
  let server;
  let browser;
  let page;
  let modelDir;
  let dataPath;
  let p95;
  const pageErrors = [];

  before(async () => {
    server = await startServer();
    // The server reads only inside its home folder (and folders added to it): the model and data go there.
    modelDir = writeTinyModel(join(server.home, 'tiny-model'));
    dataPath = writeData(server.home);
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
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

  test('goal: the fields keep what was typed across Back, Next and a reload', async () => {
    await page.click(testid('nav-new'));
    await page.waitForSelector(testid('wizard-goal'));
    assert.equal(new URL(page.url()).hash, '#/new/goal');
    assert.match(await page.textContent(testid('step-title')), /Step 1 of 6: Goal/);
    // Every control of the step has a visible label.
    for (const id of ['goal-name', 'goal-task', 'goal-input', 'goal-output']) {
      const label = await page.$eval(testid(id), (el) => el.closest('label')?.innerText.trim() ?? '');
      assert.ok(label.length > 5, `${id} has no visible label`);
    }
    await page.fill(testid('goal-name'), 'Support replies');
    await page.fill(testid('goal-task'), 'Answer customer questions about orders in one friendly sentence.');
    await page.fill(testid('goal-input'), 'Where is my order 1234?');
    await page.fill(testid('goal-output'), 'It left our warehouse yesterday and arrives on Friday.');
    await screenshot(page, 'wizard-1-goal');

    await page.click(testid('wizard-next'));
    await page.waitForSelector(testid('wizard-model'));
    // The new step's title has the keyboard focus, so the next Tab is in the new step.
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'step-title');
    await page.click(testid('wizard-back'));
    await page.waitForSelector(testid('wizard-goal'));
    assert.equal(await page.inputValue(testid('goal-name')), 'Support replies');

    // Closing and opening again: the draft is in the browser's storage.
    await page.reload();
    await page.waitForSelector(testid('wizard-goal'));
    assert.equal(await page.inputValue(testid('goal-name')), 'Support replies');
    assert.equal(await page.inputValue(testid('goal-output')), 'It left our warehouse yesterday and arrives on Friday.');
  });

  test('base model: a model added by its path is chosen, with a fit badge; the catalog shows licenses', async () => {
    // From the keyboard: Tab to Next and press Enter.
    await page.focus(testid('wizard-next'));
    await page.keyboard.press('Enter');
    await page.waitForSelector(testid('wizard-model'));
    await page.waitForSelector(testid('model-import-path'));

    // A path the server may not read is refused with its code and a message in plain words.
    await page.fill(testid('model-import-path'), '/etc/no-such-model.gguf');
    await page.click(testid('model-import-add'));
    await page.waitForSelector(`${testid('error-banner')}:visible`);
    assert.equal(await page.textContent(testid('error-code')), 'path_not_allowed');
    assert.match(await page.textContent(testid('error-message')), /not in a folder Whetstone may use/);
    // The browser logs the refused request itself; that one is expected.
    const refused = pageErrors.findIndex((e) => /status of 403/.test(e));
    assert.ok(refused >= 0, pageErrors.join('\n'));
    pageErrors.splice(refused, 1);

    await page.fill(testid('model-import-path'), modelDir);
    await page.click(testid('model-import-add'));
    const chosen = `${testid('model-option')}.selected`;
    await page.waitForSelector(`${chosen}[data-ref="${modelDir}"]`);
    assert.ok(await page.isChecked(`${chosen} ${testid('model-radio')}`));
    await page.waitForSelector(`${chosen} ${testid('fit-badge')}[data-fit="fits"]`);

    const { body: catalog } = await api(server, 'catalog');
    assert.equal(await page.locator(`${testid('catalog-choices')} ${testid('model-option')}`).count(), catalog.length);
    const gated = catalog.filter((c) => c.gated).length;
    assert.equal(await page.locator(`${testid('catalog-choices')} ${testid('gated')}`).count(), gated);
    const commercial = await page.locator(`${testid('catalog-choices')} ${testid('commercial-use')}`).allTextContents();
    assert.equal(commercial.filter((t) => t === 'Not for commercial use').length, catalog.filter((c) => !c.commercial_use).length);
    // Catalog models are planned from their shape before any download.
    await page.waitForSelector(`${testid('catalog-choices')} ${testid('fit-badge')}:not([data-fit="checking"])`);
    await screenshot(page, 'wizard-2-model');
  });

  test('data: a file with a bad row shows it with its line and reason; cleaning, split, lengths and the loss mask', async () => {
    await page.click(testid('wizard-next'));
    await page.waitForSelector(testid('wizard-data'));
    assert.ok(await page.isVisible(testid('datasets-none')), 'no dataset yet: the empty state says so');
    await page.fill(testid('data-import-path'), dataPath);
    await page.click(testid('data-import-start'));
    await page.waitForSelector(testid('import-report'));
    assert.equal(await page.textContent(testid('import-accepted')), '13');
    assert.equal(await page.textContent(testid('import-shape')), 'prompt/response');
    const lines = await page.locator(testid('rejection-line')).allTextContents();
    const reasons = await page.locator(testid('rejection-reason')).allTextContents();
    assert.deepEqual(lines, ['5']);
    assert.match(reasons[0], /field `response` is empty/);
    assert.equal(await page.locator(`${testid('rows-table')} tbody tr`).count(), 8);

    // The proposal changes nothing until it is confirmed.
    await page.click(testid('clean-propose'));
    await page.waitForSelector(testid('clean-proposal'));
    assert.equal(await page.textContent(testid('clean-rows-after')), '12');
    assert.match(await page.textContent(testid('clean-duplicates')), /1 removed from 1 group/);
    const { body: before } = await api(server, 'data_versions', { dataset: 'support-replies' });
    assert.equal(before.length, 1);
    await page.click(testid('clean-apply'));
    await page.waitForSelector(testid('clean-applied'));
    assert.equal(await page.textContent(testid('data-rows')), '12');
    const { body: afterClean } = await api(server, 'data_versions', { dataset: 'support-replies' });
    assert.equal(afterClean.length, 2);

    await page.fill(testid('split-val'), '25');
    await page.click(testid('split-start'));
    await page.waitForSelector(testid('split-result'));
    assert.ok(
      (await page.isVisible(testid('split-leakage-none'))) || (await page.isVisible(testid('split-leakage'))),
      'the leakage check reports either way',
    );
    assert.match(await page.textContent(testid('data-split-counts')), /^9 for training, 3 for checking, 0 for testing$/);

    // Token lengths with the chosen model's tokenizer, as bars.
    await page.waitForSelector(`${testid('lengths-histogram')}, ${testid('lengths-error')}`);
    assert.equal(await page.locator(testid('lengths-error')).count(), 0, await page.textContent('body'));
    const heights = await page.$$eval(`${testid('lengths-histogram')} rect`, (rects) => rects.map((r) => Number(r.getAttribute('height'))));
    assert.ok(heights.some((h) => h > 0), `bars ${heights}`);
    p95 = Number(await page.textContent(testid('lengths-p95')));
    assert.ok(p95 > 10, `95% of the rows within ${p95} tokens`);
    // The loss mask: the answer's tokens are the trained ones.
    await page.waitForSelector(`${testid('mask-tokens')} mark[data-trained="true"]`);
    const trained = (await page.locator(`${testid('mask-tokens')} mark`).allTextContents()).join('');
    const { body: rows } = await api(server, 'data_rows', { dataset: 'support-replies', limit: 1 });
    assert.ok(trained.includes(rows.rows[0].messages[1].content), `trained text ${JSON.stringify(trained)}`);
    await screenshot(page, 'wizard-3-data');
  });

  test('settings: presets from the backend, explanations, a warning outside the safe range, the changed count', async () => {
    await page.click(testid('wizard-next'));
    await page.waitForSelector(testid('wizard-settings'));
    await page.waitForSelector(testid('preset-choice'));
    // The presets the wizard shows are the backend's for this data: 9 training rows of the lengths measured.
    const { body: defaults } = await api(server, 'train_defaults', { examples: 9, p95_tokens: p95 });
    assert.equal(await page.locator(`${testid('preset-choice')} input[type="radio"]`).count(), defaults.presets.length);
    assert.ok(await page.isChecked(testid('preset-balanced')), 'the balanced preset is the start');
    await page.check(testid('preset-quick_test'));
    const quick = defaults.presets.find((p) => p.name === 'quick_test').settings;
    assert.equal(Number(await page.inputValue(testid('setting-steps-input'))), quick.steps);
    // A safetensors model: LoRA or QLoRA, not "the GGUF file as it is".
    assert.ok(await page.isChecked(testid('method-lora')));
    assert.equal(await page.locator(testid('method-gguf')).count(), 0);

    // Each main setting has a label, a line of help and its flag.
    for (const f of defaults.fields.filter((f) => !f.advanced)) {
      const box = testid(`setting-${f.key}`);
      assert.match(await page.textContent(box), new RegExp(f.label.replace(/[()]/g, '.')));
      assert.ok((await page.textContent(box)).includes(f.flag), `${f.key}: flag missing`);
    }
    // Where to train: the devices the backend found, the ones it cannot train on disabled with the reason.
    const { body: devices } = await api(server, 'devices');
    await page.waitForSelector(testid('setting-device-input'));
    const options = page.locator(`${testid('setting-device-input')} option`);
    assert.equal(await options.count(), devices.options.length);
    assert.equal(await page.inputValue(testid('setting-device-input')), 'auto');
    assert.ok((await page.textContent(testid('device-selection'))).includes(devices.auto.label));
    for (const [i, o] of devices.options.entries()) {
      assert.equal(await options.nth(i).isDisabled(), o.selection === null, o.value);
    }
    const unavailable = devices.options.filter((o) => o.selection === null);
    if (unavailable.length > 0) {
      assert.ok((await page.textContent(testid('device-unavailable'))).includes(unavailable[0].problem));
    }
    await page.selectOption(testid('setting-device-input'), 'cpu');
    assert.match(await page.textContent(testid('device-selection')), /Trains on the processor \(f32\)/);
    await page.selectOption(testid('setting-device-input'), 'auto');

    await page.fill(testid('setting-lr-input'), '0.01');
    await page.waitForSelector(testid('setting-lr-warning'));
    const lrDoc = defaults.fields.find((f) => f.key === 'lr');
    assert.match(await page.textContent(testid('setting-lr-warning')), new RegExp(lrDoc.above.slice(0, 20).replace(/\./g, '\\.')));
    await page.fill(testid('setting-lr-input'), String(quick.lr));
    await page.waitForSelector(testid('setting-lr-warning'), { state: 'detached' });

    // Changed from the defaults: counted over every setting but the method's.
    const differing = defaults.fields.filter(
      (f) => f.key !== 'quant' && JSON.stringify(quick[f.key]) !== JSON.stringify(defaults.defaults[f.key]),
    ).length;
    assert.match(await page.textContent(testid('changed-count')), new RegExp(`^\\(${differing} settings? changed`));
    await page.click(`${testid('advanced-settings')} summary`);
    assert.ok(await page.isVisible(testid('setting-lora-alpha')));

    await page.waitForSelector(testid('trainable-count'));
    const trainable = Number((await page.textContent(testid('trainable-count'))).replace(/,/g, ''));
    // LoRA rank r on every q,k,v,o,gate,up,down of 2 layers of the tiny model: r·(in+out) each.
    const r = quick['lora-r'];
    const perLayer = r * ((64 + 64) + (64 + 32) + (64 + 32) + (64 + 64) + 3 * (64 + 128));
    assert.equal(trainable, 2 * perLayer);
    await screenshot(page, 'wizard-4-settings');
  });

  test('preflight: memory with its breakdown, a time, and Start naming what is missing until nothing is', async () => {
    await page.click(testid('wizard-next'));
    await page.waitForSelector(testid('wizard-preflight'));
    await page.waitForSelector(testid('preflight-breakdown'));
    assert.equal(await page.getAttribute(testid('preflight-fit'), 'data-fit'), 'fits');
    assert.equal(await page.locator(`${testid('preflight-breakdown')} tbody tr`).count(), 7);
    assert.match(await page.textContent(testid('time-steps')), /^\d+ steps? of about \d+ tokens each\.$/);
    assert.match(await page.textContent(testid('time-estimate')), /At least .+ this computer has not trained this model before/s);
    await page.waitForSelector(testid('preflight-ready'));

    // Without a name the Start button says what is missing and cannot be pressed.
    await page.click('a[href="#/new/goal"]');
    await page.waitForSelector(testid('wizard-goal'));
    await page.fill(testid('goal-name'), '');
    await page.click(testid('step-link-preflight'));
    await page.waitForSelector(testid('preflight-missing'));
    assert.match(await page.textContent(testid('preflight-missing')), /a name for the run/);
    assert.ok(await page.isDisabled(testid('preflight-start-button')));
    assert.match(await page.textContent(testid('preflight-start-button')), /1 thing missing/);
    await page.click(testid('step-link-goal'));
    await page.fill(testid('goal-name'), 'Support replies');
    await page.click(testid('step-link-preflight'));
    await page.waitForSelector(testid('preflight-ready'));
    await page.waitForSelector(`${testid('preflight-start-button')}:not([disabled])`);
    await screenshot(page, 'wizard-5-preflight');
  });

  test('launch: Start trains the run and its card on the Runs screen draws the growing curve', async () => {
    await page.click(testid('preflight-start-button'));
    await page.waitForURL(/#\/runs\/\d+$/);
    const id = Number(new URL(page.url()).hash.split('/').pop());
    const card = testid(`run-${id}`);
    await page.waitForSelector(card);
    assert.match(await page.textContent(`${card} h3`), /Support replies/);
    const { body: run } = await api(server, 'get_run', { id });
    assert.equal(run.config.settings.quant, 'none', 'LoRA on a full-precision base');
    assert.ok(run.config.val, 'the checking split is the validation data');

    // The card refreshes itself while the run trains; wait until it has drawn several steps.
    const chart = `${card} ${testid('run-chart')}`;
    const grown = page.waitForFunction(
      (sel) => {
        const el = document.querySelector(sel);
        const m = el && el.getAttribute('data-rendered') === 'true' && /over (\d+) steps/.exec(el.getAttribute('aria-label'));
        return m && Number(m[1]) >= 5;
      },
      chart,
      { timeout: 180_000 },
    );
    await grown.catch(async (e) => {
      const { body: now } = await api(server, 'get_run', { id });
      throw new Error(`the curve did not reach 5 steps; the run is ${now.status} at step ${now.step}: ${now.error}; ${e.message}`);
    });
    // The card keeps following the run without a reload, to its end.
    await page.waitForSelector(`${card} ${testid('run-status')}:text-is("finished")`, { timeout: 180_000 });
    const { body: metrics } = await api(server, 'run_metrics', { id });
    assert.ok(metrics.filter((m) => (m.kind ?? 'train') === 'train').length >= 5);
    await screenshot(page, 'wizard-6-run');

    // Back in the wizard, the launch step says which run this draft started.
    await page.click(testid('nav-new'));
    await page.waitForSelector(testid('wizard-launch'));
    assert.match(await page.textContent(testid('launch-started')), new RegExp(`Run #${id} was started`));
  });

  test('start over forgets the draft', async () => {
    await page.click(testid('wizard-start-over'));
    await page.click(testid('wizard-start-over-yes'));
    await page.waitForSelector(testid('wizard-goal'));
    assert.equal(await page.inputValue(testid('goal-name')), '');
    await page.reload();
    await page.waitForSelector(testid('wizard-goal'));
    assert.equal(await page.inputValue(testid('goal-name')), '');
  });

  test('the wizard ran without script or content-policy errors', async () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
  });
});

describe('the new-run wizard in the dark theme', () => {
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

  test('the settings step follows the system theme', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
    page.setDefaultTimeout(TIMEOUT);
    await enforceAppCsp(page);
    await page.goto(server.page());
    await page.waitForSelector(testid('home'));
    await page.click(testid('nav-new'));
    await page.click(testid('step-link-settings'));
    await page.waitForSelector(testid('preset-choice'));
    const bg = await page.$eval(testid('wizard-settings'), (el) => getComputedStyle(el).backgroundColor);
    const [r, g, b] = bg.match(/\d+/g).map(Number);
    assert.ok(r + g + b < 150, `the step's card is ${bg} in the dark theme`);
    await screenshot(page, 'wizard-4-settings-dark');
    await page.close();
  });
});
