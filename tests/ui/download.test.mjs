// Downloading a base model from the wizard in headless Chromium against the real `whet serve`,
// with a loopback test hub serving a tiny model slowly: hub search, the progress bar with speed and
// time left, Cancel keeping what arrived, Resume continuing from there, and the model then chosen.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../support/server.mjs';
import { startHub } from '../support/hub.mjs';
import { launchBrowser, openApp, screenshot } from '../support/browser.mjs';
import { writeTinyModel } from '../support/tiny-model.mjs';

const TIMEOUT = 30_000;
const REPO = 'whetstone-tests/tiny-llama';

const testid = (id) => `[data-testid="${id}"]`;

describe('downloading a model in the wizard', () => {
  let files;
  let hub;
  let server;
  let browser;
  let page;
  let pageErrors;

  before(async () => {
    files = mkdtempSync(join(tmpdir(), 'whetstone-hub-'));
    const model = writeTinyModel(join(files, 'tiny'));
    const weights = statSync(join(model, 'model.safetensors')).size;
    // About four seconds for the weights: time to see the bar move and to cancel half-way.
    hub = await startHub({ [REPO]: model }, { rate: weights / 4 });
    server = await startServer({
      env: { HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(files, 'hf-cache'), HF_HOME: join(files, 'hf-home'), HF_TOKEN: '' },
    });
    browser = await launchBrowser();
    ({ page, errors: pageErrors } = await openApp(browser, server, { timeout: TIMEOUT }));
    await page.click(testid('nav-new'));
    await page.waitForSelector(testid('wizard-goal'));
    await page.click(testid('wizard-next'));
    await page.waitForSelector(testid('wizard-model'));
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await hub?.close();
    if (files) rmSync(files, { recursive: true, force: true });
  });

  test('search the hub, download with progress, cancel, resume, and the model is chosen', async () => {
    await page.fill(testid('hub-search-query'), 'tiny');
    await page.click(testid('hub-search-go'));
    const result = `${testid('hub-result')}[data-repo="${REPO}"]`;
    await page.waitForSelector(result);
    assert.match(await page.textContent(result), /License: apache-2\.0/);

    // Every value the bar shows, in order, to see that Resume starts where Cancel stopped.
    await page.evaluate(() => {
      window.__barValues = [];
      new MutationObserver(() => {
        const bar = document.querySelector('[data-testid="download-bar"]');
        if (bar) window.__barValues.push(Number(bar.getAttribute('aria-valuenow')));
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow'], childList: true });
    });

    await page.click(`${result} ${testid('download-start')}`);
    await page.waitForFunction(
      (sel) => Number(document.querySelector(sel)?.getAttribute('aria-valuenow')) >= 15,
      `${result} ${testid('download-bar')}`,
    );
    const figures = (await page.textContent(`${result} ${testid('download-figures')}`)).replace(/\s+/g, ' ');
    assert.match(figures, /KB of \d+ KB \(\d+%\) · \d+ KB\/s · (about \d+ s left|working out the time left) · downloading model\.safetensors/);
    await screenshot(page, 'wizard-2-download');

    await page.click(`${result} ${testid('download-cancel')}`);
    await page.waitForSelector(`${result} ${testid('download')}[data-status="stopped"]`);
    const stoppedAt = Number(await page.getAttribute(`${result} ${testid('download-bar')}`, 'aria-valuenow'));
    assert.ok(stoppedAt > 0 && stoppedAt < 100, `stopped half-way, at ${stoppedAt}%`);
    assert.deepEqual((await server.call('list_models')).body, [], 'a cancelled download adds no model');
    assert.match(await page.textContent(`${result} ${testid('download-stopped')}`), /What has arrived is kept/);

    const before = await page.evaluate(() => window.__barValues.length);
    await page.click(`${result} ${testid('download-start')}`);
    assert.equal(await page.textContent(`${result} ${testid('download-cancel')}`), 'Cancel download');
    // Done: the model is on this computer and chosen for the run.
    const chosen = `${testid('model-option')}.selected[data-kind="installed"]`;
    await page.waitForSelector(chosen, { timeout: TIMEOUT });
    assert.match(await page.textContent(chosen), /tiny-llama/);
    const after = await page.evaluate((n) => window.__barValues.slice(n), before);
    assert.ok(after.length > 0 && Math.min(...after) >= stoppedAt, `resumed from ${stoppedAt}%, bar showed ${after.join(', ')}`);
    const listed = (await server.call('list_models')).body;
    assert.equal(listed.length, 1);
    assert.equal(listed[0].repo_id, REPO);
    await page.waitForSelector(`${chosen} ${testid('fit-badge')}[data-fit="fits"]`);
    await screenshot(page, 'wizard-2-downloaded');
    assert.deepEqual(pageErrors, []);
  });
});
