// Review queues in headless Chromium against the real `whet serve`, with a tiny random model writing for real:
// from the Datasets screen, variations of two rows are made, one is accepted and one rejected by keyboard,
// one is edited (a row that would not import is refused first), and the accepted ones become a new version;
// then a sample of five rows is checked, one flagged, and the share flagged is shown and reported.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../support/server.mjs';
import { enforceAppCsp, launchBrowser, screenshot } from '../support/browser.mjs';
import { writeTinyModel } from '../support/tiny-model.mjs';

const TIMEOUT = 30_000;

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
  const lines = [
    row('Where is my order 1001?', 'It left the warehouse today and arrives on Friday.'),
    row('Can I change my delivery address?', 'Yes, until the parcel leaves the warehouse.'),
    row('How do I return a pair of shoes?', 'Print the label from your account and drop the box at any post office.'),
    row('Do you ship abroad?', 'We ship to every country in the European Union.'),
    row('How long does a refund take?', 'Refunds reach your card within five working days.'),
    row('Is the blue jacket in stock?', 'Yes, in every size but XL.'),
    row('Can I pay with a gift card?', 'Yes, enter its code at checkout.'),
    row('Do you have a shop in Lyon?', 'No, we only sell online.'),
  ];
  const path = join(dir, 'support-faq.jsonl');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

describe('review queues of a dataset', () => {
  let server;
  let browser;
  let page;
  let dataset;
  let model;
  let queue;
  const pageErrors = [];

  before(async () => {
    server = await startServer();
    const modelDir = writeTinyModel(join(server.home, 'tiny-model'));
    const imported = await api(server, 'import_model', { path: modelDir });
    assert.equal(imported.status, 200, JSON.stringify(imported.body));
    model = imported.body;
    const data = await api(server, 'data_import', { path: writeData(server.home), name: 'support-faq' });
    assert.equal(data.status, 200, JSON.stringify(data.body));
    dataset = data.body.dataset;
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
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

  test('variations of two rows: accept, edit and reject, then the accepted ones as a new version', async () => {
    await page.click(testid('nav-datasets'));
    await page.click(testid(`dataset-vary-${dataset.id}`));
    await page.waitForSelector(testid('vary-form'));
    assert.equal(new URL(page.url()).hash, `#/dataqueue/${dataset.id}/vary`);
    // No queue yet: the empty state says what to do.
    await page.waitForSelector(testid('queue-list-empty'));
    assert.ok(await page.isDisabled(testid('vary-start')), 'nothing chosen, nothing to start');
    await page.waitForSelector(`${testid('vary-model')} option[value="model:${model.id}"]`, { state: 'attached' });
    // Every control has a visible label.
    for (const id of ['vary-count', 'vary-model', 'vary-temperature', 'vary-part']) {
      const label = await page.$eval(testid(id), (el) => el.closest('label')?.innerText.trim() ?? '');
      assert.ok(label.length > 4, `${id} has no visible label`);
    }

    await page.check(testid('pick-row-2'));
    await page.check(testid('pick-row-5'));
    assert.match(await page.textContent(testid('picked-count')), /2 rows chosen: 2, 5/);
    await page.fill(testid('vary-count'), '2');
    await page.selectOption(testid('vary-model'), `model:${model.id}`);
    await page.click('summary:text("More settings")');
    await page.fill(testid('vary-max-new'), '16');
    await page.fill(testid('vary-seed'), '11');
    const versionsBefore = (await api(server, 'data_versions', { dataset: 'support-faq' })).body;
    await page.click(testid('vary-start'));
    await page.waitForSelector(testid('review-queue'));
    queue = Number(/queue\/(\d+)$/.exec(new URL(page.url()).hash)[1]);

    // What the queue holds came from the model; nothing has entered the dataset.
    const { body: items } = await api(server, 'queue_items', { queue });
    assert.equal(items.items.length, 4);
    assert.deepEqual(items.items.map((i) => i.source_row), [2, 2, 5, 5]);
    for (const i of items.items) {
      assert.equal(i.synthetic.model.endsWith('tiny-model'), true, i.synthetic.model);
      assert.match(i.synthetic.prompt, /Say the following in other words/);
    }
    assert.deepEqual((await api(server, 'data_versions', { dataset: 'support-faq' })).body, versionsBefore);

    // The first item is on screen, beside its source row.
    assert.equal(await page.textContent(testid('item-position')), 'Item 1 of 4');
    assert.match(await page.textContent(testid('item-source')), /Can I change my delivery address\?/);
    const candidate = items.items[0].row.messages.find((m) => m.role === 'user').content;
    assert.equal((await page.textContent(`${testid('item-candidate')} .said`)).trim(), candidate);

    // Arrows move between items; A accepts one that imports as written.
    const ok = items.items.findIndex((i) => i.problem === null);
    assert.ok(ok >= 0, 'at least one variation imports as written');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.textContent(testid('item-position')), 'Item 2 of 4');
    await page.keyboard.press('ArrowLeft');
    for (let k = 0; k < ok; k++) await page.keyboard.press('ArrowRight');
    assert.equal(await page.textContent(testid('item-position')), `Item ${ok + 1} of 4`);
    await page.keyboard.press('a');
    await page.waitForSelector(`${testid(`item-chip-${ok + 1}`)}.chip-accept`);
    const others = [1, 2, 3, 4].filter((n) => n !== ok + 1);

    // Edit with the mouse: an empty answer is refused with the importer's reason, then a good edit is kept.
    await page.click(testid(`item-chip-${others[0]}`));
    await page.click(testid('decide-edit'));
    await page.waitForSelector(testid('row-editor'));
    await page.fill(testid('edit-user'), 'Could I still change where my parcel goes?');
    await page.fill(testid('edit-assistant'), '   ');
    await page.click(testid('edit-save'));
    await page.waitForSelector(testid('item-refused'));
    assert.match(await page.textContent(testid('item-refused')), /field `content`.*empty|is empty/);
    const refused = pageErrors.findIndex((e) => /status of 400/.test(e));
    assert.ok(refused >= 0, pageErrors.join('\n'));
    pageErrors.splice(refused, 1);
    await page.fill(testid('edit-assistant'), 'Yes, until the parcel leaves the warehouse.');
    await page.click(testid('edit-save'));
    await page.waitForSelector(`${testid(`item-chip-${others[0]}`)}.chip-edit`);

    // R rejects by keyboard.
    await page.click(testid(`item-chip-${others[1]}`));
    await page.locator(testid(`item-chip-${others[1]}`)).blur();
    await page.keyboard.press('r');
    await page.waitForSelector(`${testid(`item-chip-${others[1]}`)}.chip-reject`);
    assert.match(await page.textContent(testid('summary-counts')), /4 variations: 1 accepted, 1 edited, 1 rejected, 1 not decided yet/);
    await page.click(testid(`item-chip-${others[0]}`));
    await page.waitForSelector(testid('item-edited'));
    await screenshot(page, 'dataqueue-augment');

    await page.click(testid('queue-apply'));
    await page.waitForSelector(testid('apply-result'));
    assert.match(await page.textContent(testid('apply-result')), /Version 2 of “support-faq” is ready with 10 rows/);
    const { body: versions } = await api(server, 'data_versions', { dataset: 'support-faq' });
    assert.equal(versions.length, 2);
    assert.equal(versions[1].rows, 10);
    assert.deepEqual(versions[0], versionsBefore[0], 'the old version is untouched');
    const step = versions[1].steps[0];
    assert.equal(step.step, 'augment');
    assert.deepEqual(step.rows.map((r) => [r.row, r.item, r.synthetic, r.edited]), [
      [9, Math.min(ok + 1, others[0]), true, ok + 1 > others[0]],
      [10, Math.max(ok + 1, others[0]), true, ok + 1 < others[0]],
    ]);
    const { body: page2 } = await api(server, 'data_rows', { dataset: 'support-faq', version: 2, offset: 8, limit: 10 });
    const added = page2.rows.map((r) => r.messages.find((m) => m.role === 'user').content);
    assert.ok(added.includes('Could I still change where my parcel goes?'), JSON.stringify(added));
    assert.ok(added.includes(items.items[ok].row.messages.find((m) => m.role === 'user').content));
    // The queue takes no more decisions, and the list says where it went.
    assert.equal(await page.locator(testid('decide-accept')).count(), 0);
    await page.waitForSelector(`${testid('queue-table')} :text("Added as version 2")`);
  });

  test('a sample of five rows: one flagged, the share flagged shown and reported', async () => {
    await page.click(testid('tab-sample'));
    await page.waitForSelector(testid('sample-form'));
    await page.fill(testid('sample-size'), '5');
    await page.click(testid('sample-start'));
    await page.waitForSelector(testid('review-queue'));
    const sample = Number(/queue\/(\d+)$/.exec(new URL(page.url()).hash)[1]);
    assert.notEqual(sample, queue);
    assert.equal(await page.textContent(testid('item-position')), 'Item 1 of 5');
    assert.equal(await page.locator(testid('decide-reject')).count(), 0, 'a sample keeps every row: flag instead');

    await page.keyboard.press('a');
    await page.waitForSelector(`${testid('item-chip-1')}.chip-accept`);
    assert.equal(await page.textContent(testid('item-position')), 'Item 2 of 5');
    await page.keyboard.press('f');
    await page.waitForSelector(testid('flag-note'));
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'flag-note');
    await page.keyboard.type('The answer leaves out the delivery fee.');
    await page.click(testid('flag-save'));
    await page.waitForSelector(`${testid('item-chip-2')}.chip-flag`);

    assert.equal(await page.textContent(testid('summary-sample-size')), '5');
    assert.equal(await page.textContent(testid('summary-flagged')), '1');
    assert.equal(await page.textContent(testid('summary-share')), '20%');
    assert.match(await page.textContent(testid('summary-flags')), /The answer leaves out the delivery fee\./);
    const { body: summary } = await api(server, 'queue_summary', { queue: sample });
    assert.equal(summary.sample_size, 5);
    assert.equal(summary.share_flagged, 0.2);
    assert.equal(summary.accepted, 1);
    await page.click(testid('item-chip-2'));
    await page.waitForSelector(testid('item-note'));
    await screenshot(page, 'dataqueue-sample');
  });

  test('the screens ran without script or content-policy errors', async () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
  });
});
