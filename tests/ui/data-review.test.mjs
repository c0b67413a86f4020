// The wizard's row review, dropped files and settings files in headless Chromium against the real
// `whet serve`: rows edited and deleted by hand are saved as a new version the wizard then uses; a
// file dropped on the page is sent by its content and imported; settings saved to a file come back
// when it is opened.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../support/server.mjs';
import { enforceAppCsp, launchBrowser, screenshot } from '../support/browser.mjs';

const TIMEOUT = 20_000;
const DRAFT_KEY = 'whetstone.wizard.draft.v1';

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

const ROWS = [
  ['Where is my order 1001?', 'It left the warehouse today.'],
  ['Can I change my delivery address?', 'No.'],
  ['How do I return a pair of shoes?', 'Print the label from your account.'],
  ['What is the capital of Mars?', 'Olympus City.'],
  ['How long does a refund take?', 'Five working days.'],
  ['Do you ship abroad?', 'Across the European Union.'],
];

describe('reviewing rows, dropping a file and settings files in the wizard', () => {
  let server;
  let browser;
  let page;
  const pageErrors = [];

  /** Takes out of the page's errors the one the browser logs for a refused request with `status`. */
  function expectRefusal(status) {
    const at = pageErrors.findIndex((e) => e.includes(`status of ${status}`));
    assert.ok(at >= 0, `a ${status} was logged: ${pageErrors.join('\n')}`);
    pageErrors.splice(at, 1);
  }

  const draft = () => page.evaluate((key) => JSON.parse(localStorage.getItem(key)), DRAFT_KEY);

  before(async () => {
    server = await startServer();
    writeFileSync(join(server.home, 'support.jsonl'), ROWS.map(([p, r]) => row(p, r)).join('\n') + '\n');
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
    await page.click(testid('nav-new'));
    await page.click(testid('step-link-data'));
    await page.waitForSelector(testid('wizard-data'));
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('review: one row edited and one deleted by keyboard, saved as a new version the wizard then uses', async () => {
    await page.fill(testid('data-import-path'), join(server.home, 'support.jsonl'));
    await page.click(testid('data-import-start'));
    await page.waitForSelector(testid('import-report'));
    await page.click(testid('review-open'));
    await page.waitForSelector(testid('review-table'));
    assert.equal(await page.locator(`${testid('review-table')} tbody tr`).count(), 6);
    assert.equal(await page.textContent(testid('review-summary')), '0 edited, 0 deleted');
    assert.ok(await page.isDisabled(testid('review-save')), 'nothing to save yet');

    // Edit row 2 from the keyboard: Enter on Edit opens the form with the first turn focused.
    await page.focus(testid('review-edit-2'));
    await page.keyboard.press('Enter');
    await page.waitForSelector(testid('row-editor'));
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'row-editor-turn-0');
    // Each turn has a visible label saying who speaks.
    const labels = await page.$$eval(`${testid('row-editor')} label .label`, (els) => els.map((e) => e.textContent.trim()));
    assert.deepEqual(labels, ['Turn 1: Question (user)', 'Turn 2: Answer (assistant)']);
    assert.equal(await page.inputValue(testid('row-editor-turn-1')), 'No.');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'row-editor-turn-1');
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.type('Yes, until the parcel leaves the warehouse.');
    // Escape cancels and gives the focus back to the row's Edit button.
    await page.keyboard.press('Escape');
    await page.waitForSelector(testid('row-editor'), { state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'review-edit-2');
    assert.equal(await page.getAttribute(testid('review-row-2'), 'data-state'), 'kept');
    await page.keyboard.press('Enter');
    await page.waitForSelector(testid('row-editor'));
    await page.keyboard.press('Tab');
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.type('Yes, until the parcel leaves the warehouse.');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'row-editor-keep');
    await page.keyboard.press('Enter');
    await page.waitForSelector(testid('row-editor'), { state: 'detached' });
    assert.equal(await page.getAttribute(testid('review-row-2'), 'data-state'), 'edited');
    assert.match(await page.textContent(testid('review-row-2')), /Yes, until the parcel leaves the warehouse\./);

    // Delete row 4, undo, delete again: the focus follows the button that replaces the pressed one.
    await page.focus(testid('review-delete-4'));
    await page.keyboard.press('Enter');
    await page.waitForSelector(`${testid('review-row-4')}[data-state="deleted"]`);
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'review-undo-4');
    await page.keyboard.press('Enter');
    await page.waitForSelector(`${testid('review-row-4')}[data-state="kept"]`);
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'review-delete-4');
    await page.keyboard.press('Enter');
    await page.waitForSelector(`${testid('review-row-4')}[data-state="deleted"]`);
    assert.equal(await page.textContent(testid('review-summary')), '1 edited, 1 deleted');

    // An edit that leaves a row without an answer is refused by the backend, naming the row and why.
    await page.click(testid('review-edit-3'));
    await page.fill(testid('row-editor-turn-1'), '   ');
    await page.click(testid('row-editor-keep'));
    assert.equal(await page.textContent(testid('review-summary')), '2 edited, 1 deleted');
    await page.click(testid('review-save'));
    await page.waitForSelector(testid('review-refused'));
    const refusal = await page.textContent(testid('review-refused'));
    assert.match(refusal, /row 3 \(line 3 of the imported file\) cannot be saved: field `messages\[1\]\.content` is empty/);
    expectRefusal(422);
    assert.equal((await api(server, 'data_versions', { dataset: 'support' })).body.length, 1, 'nothing was saved');
    await page.click(testid('review-undo-edit-3'));
    assert.equal(await page.textContent(testid('review-summary')), '1 edited, 1 deleted');

    // Unsaved changes survive leaving the step (they are kept with the draft).
    await page.click(testid('wizard-back'));
    await page.waitForSelector(testid('wizard-model'));
    await page.click(testid('wizard-next'));
    await page.waitForSelector(testid('review-table'));
    assert.equal(await page.textContent(testid('review-summary')), '1 edited, 1 deleted');
    await screenshot(page, 'data-review-pending');

    await page.click(testid('review-save'));
    await page.waitForSelector(testid('review-saved'));
    assert.match(await page.textContent(testid('review-saved')), /Saved as version 2 \(manual edit: 1 row changed, 1 deleted\)/);
    assert.equal(await page.textContent(testid('review-summary')), '0 edited, 0 deleted');

    // The new version through the API: the edit in place, row 4 gone, the old version as it was.
    const { body: v2 } = await api(server, 'data_rows', { dataset: 'support', version: 2, limit: 50 });
    assert.equal(v2.total, 5);
    assert.deepEqual(
      v2.rows.map((r) => r.messages[1].content),
      ['It left the warehouse today.', 'Yes, until the parcel leaves the warehouse.', 'Print the label from your account.', 'Five working days.', 'Across the European Union.'],
    );
    const { body: v1 } = await api(server, 'data_rows', { dataset: 'support', version: 1, limit: 50 });
    assert.deepEqual(v1.rows.map((r) => r.messages[1].content), ROWS.map(([, r]) => r));
    const { body: versions } = await api(server, 'data_versions', { dataset: 'support' });
    assert.equal(versions.length, 2);
    assert.equal(versions[1].steps[0].summary, 'manual edit: 1 row changed, 1 deleted');

    // The wizard goes on with the new version.
    assert.match(await page.textContent(testid('data-chosen')), /version 2:\s*5 rows/);
    const saved = await draft();
    assert.equal(saved.data.version, 2);
    assert.equal(saved.data.rows, 5);
    assert.equal(saved.review, null);
    assert.match(await page.textContent('#review-title'), /version 2/);
    assert.equal(await page.locator(`${testid('review-table')} tbody tr`).count(), 5);
    await screenshot(page, 'data-review-saved');
    await page.click(testid('review-close'));
    await page.waitForSelector(testid('rows-table'));
  });

  test('drop: a file dropped on the page is sent by its content, kept in the imports folder and imported', async () => {
    const text = [row('Is the blue jacket in stock?', 'Yes, in every size but XL.'), row('Can I pay by card?', 'Yes.')].join('\n') + '\n';
    const transfer = await page.evaluateHandle((t) => {
      const dt = new DataTransfer();
      dt.items.add(new File([t], 'dropped rows.jsonl', { type: 'application/json' }));
      return dt;
    }, text);
    await page.dispatchEvent(testid('data-dropzone'), 'dragover', { dataTransfer: transfer });
    assert.match((await page.getAttribute(testid('data-dropzone'), 'class')) ?? '', /\bover\b/);
    await page.dispatchEvent(testid('data-dropzone'), 'drop', { dataTransfer: transfer });
    await page.waitForSelector(`${testid('data-name')}:text-is("dropped rows")`);
    assert.equal(await page.textContent(testid('import-accepted')), '2');
    const kept = join(server.home, 'imports', 'dropped_rows.jsonl');
    assert.match(await page.textContent(testid('data-drop-note')), /was sent to Whetstone, which keeps its copy at .*dropped_rows\.jsonl/);
    assert.equal(readFileSync(kept, 'utf8'), text);
    const { body: list } = await api(server, 'list_datasets');
    assert.ok(list.some((d) => d.name === 'dropped rows'), JSON.stringify(list));
    assert.equal((await draft()).data.dataset, 'dropped rows');

    // The same name again gets a fresh file; the first copy stays as it was.
    await page.fill(testid('data-import-name'), 'dropped again');
    await page.dispatchEvent(testid('data-dropzone'), 'drop', { dataTransfer: transfer });
    await page.waitForSelector(`${testid('data-name')}:text-is("dropped again")`);
    assert.deepEqual(readdirSync(join(server.home, 'imports')).sort(), ['dropped_rows-2.jsonl', 'dropped_rows.jsonl']);
    assert.equal(readFileSync(kept, 'utf8'), text);
    await screenshot(page, 'data-dropped');
  });

  test('settings: saved to a file, the values come back when it is opened; a replace is asked first', async () => {
    await page.click(testid('wizard-next'));
    await page.waitForSelector(testid('preset-choice'));
    await page.fill(testid('setting-lr-input'), '0.0003');
    await page.click(`${testid('advanced-settings')} summary`);
    await page.fill(testid('setting-lora-alpha-input'), '24');
    const file = join(server.home, 'configs', 'support.yaml');
    await page.fill(testid('config-path'), file);
    await page.click(testid('config-save'));
    await page.waitForSelector(`${testid('config-status')}:has-text("Saved")`);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /^lr: 0\.0003$/m);
    assert.match(text, /^lora-alpha: 24\.0$/m);

    // Saving again over it asks first; keeping the file changes nothing.
    await page.click(testid('config-save'));
    await page.waitForSelector(testid('config-replace'));
    expectRefusal(409);
    assert.match(await page.textContent(testid('config-replace')), /already exists\. Replace it/);
    await page.click(testid('config-replace-no'));
    await page.waitForSelector(testid('config-replace'), { state: 'detached' });

    // Other values, then the file opened: its values are back, the advanced ones shown.
    await page.fill(testid('setting-lr-input'), '0.0005');
    await page.fill(testid('setting-lora-alpha-input'), '8');
    await page.click(`${testid('advanced-settings')} summary`);
    assert.equal(await page.getAttribute(testid('advanced-settings'), 'open'), null);
    await page.click(testid('config-open'));
    await page.waitForSelector(`${testid('config-status')}:has-text("Opened")`);
    assert.equal(Number(await page.inputValue(testid('setting-lr-input'))), 0.0003);
    assert.notEqual(await page.getAttribute(testid('advanced-settings'), 'open'), null, 'the advanced settings are shown');
    assert.equal(Number(await page.inputValue(testid('setting-lora-alpha-input'))), 24);
    assert.equal((await draft()).settings['lora-alpha'], 24);

    // Replacing, once asked for, writes the new values.
    await page.fill(testid('setting-lr-input'), '0.0004');
    await page.click(testid('config-save'));
    await page.click(testid('config-replace-yes'));
    expectRefusal(409);
    await page.waitForSelector(`${testid('config-status')}:has-text("Replaced")`);
    assert.match(readFileSync(file, 'utf8'), /^lr: 0\.0004$/m);

    // A PEFT file: what does not apply is said in words; a misspelt key is named with the closest one.
    const peft = join(server.home, 'configs', 'peft.json');
    writeFileSync(peft, JSON.stringify({ r: 32, lora_alpha: 64, fp16: true, logging_steps: 10 }));
    await page.fill(testid('config-path'), peft);
    await page.click(testid('config-open'));
    await page.waitForSelector(testid('config-warnings'));
    assert.equal(await page.locator(`${testid('config-warnings')} li`).count(), 2);
    assert.match(await page.textContent(testid('config-warnings')), /`logging_steps`: every step is logged/);
    assert.equal(Number(await page.inputValue(testid('setting-lora-r-input'))), 32);
    await screenshot(page, 'settings-config');

    const typo = join(server.home, 'configs', 'typo.toml');
    writeFileSync(typo, 'lerning_rate = 0.001\n');
    await page.fill(testid('config-path'), typo);
    await page.click(testid('config-open'));
    await page.waitForSelector(testid('config-error'));
    expectRefusal(422);
    assert.match(await page.textContent(testid('config-error')), /unknown setting `lerning_rate`; did you mean `learning_rate`\?/);
    assert.equal(Number(await page.inputValue(testid('setting-lora-r-input'))), 32, 'a refused file changes nothing');
  });

  test('the page ran without unexpected script or content-policy errors', async () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
  });
});
