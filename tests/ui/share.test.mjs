// "Share for review" on a session's page, in headless Chromium against the real `whet serve`: the
// organiser starts the raters' server from the page on an address they choose, the invitation links
// start with where it is shared, a rater opens one and gets the rating page, and Stop sharing closes
// the address. The desktop window's button is the same page over the same command.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startServer } from '../support/server.mjs';
import { launchBrowser, openApp, screenshot } from '../support/browser.mjs';
import { writeTinyModel } from '../support/tiny-model.mjs';

function testid(id) {
  return `[data-testid="${id}"]`;
}

/** A port nothing listens on now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

describe('sharing a review session from its page', () => {
  let server;
  let browser;
  let page;
  let errors;
  let session;

  before(async () => {
    server = await startServer();
    const model = writeTinyModel(join(server.home, 'tiny-model'));
    const data = join(server.home, 'listings.jsonl');
    const rows = ['a flat', 'a house', 'a studio', 'an office'].map((what) =>
      JSON.stringify({ prompt: `Describe ${what}.`, response: `A bright ${what.split(' ')[1]} near the park.` }),
    );
    writeFileSync(data, rows.join('\n') + '\n');
    const started = await server.call('start_run', { model, data, settings: { steps: 2, batch: 1, 'max-len': 64 } });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    for (const until = Date.now() + 180_000; ; ) {
      const { body: run } = await server.call('get_run', { id: started.body.id });
      if (!['queued', 'running'].includes(run.status)) {
        assert.equal(run.status, 'completed', `the run ended ${run.status}: ${run.error}`);
        break;
      }
      assert.ok(Date.now() < until, 'the run did not finish');
      await new Promise((r) => setTimeout(r, 300));
    }
    const evaluation = await server.call('eval_run', { run: started.body.id, rows: [{ prompt: 'Describe a loft.' }], max_new_tokens: 8 });
    assert.equal(evaluation.status, 200, JSON.stringify(evaluation.body));
    ({ body: session } = await server.call('review_create', { evaluation: evaluation.body.id, name: 'Lofts' }));
    browser = await launchBrowser();
    ({ page, errors } = await openApp(browser, server));
    await page.waitForSelector(testid('home'));
  });

  after(async () => {
    await server?.call('review_unshare');
    await browser?.close();
    await server?.close();
  });

  test('Start sharing serves the raters page on the chosen address, and the links use it', async () => {
    await page.evaluate((id) => (location.hash = `#/review/${id}`), session.id);
    await page.waitForSelector(`${testid('review-share')}[data-shared="false"]`);
    // Every control has a visible label.
    for (const id of ['share-reach', 'share-port']) {
      const label = await page.$eval(testid(id), (el) => el.closest('label')?.innerText.trim() ?? '');
      assert.ok(label.length > 3, `${id} has no visible label`);
    }
    const port = await freePort();
    await page.selectOption(testid('share-reach'), 'local');
    await page.fill(testid('share-port'), String(port));
    await page.click(testid('share-start'));
    await page.waitForSelector(`${testid('review-share')}[data-shared="true"]`);
    assert.equal(await page.textContent(testid('share-bind')), `127.0.0.1:${port}`);
    assert.deepEqual(await page.locator(testid('share-link')).allTextContents(), [`http://127.0.0.1:${port}/review`]);
    assert.match(await page.textContent(testid('share-status')), /only this computer can open it/);

    await page.fill(testid('invite-name'), 'Ann');
    await page.click(testid('invite-start'));
    const link = await page.locator(`${testid('invitation')}[data-rater="Ann"] ${testid('invitation-link')}`).inputValue();
    assert.match(link, new RegExp(`^http://127\\.0\\.0\\.1:${port}/review#token=[0-9a-f]{64}$`));
    await screenshot(page, 'review-share');

    // The rater's browser: the link opens the rating page with Ann's one question.
    const rater = await browser.newContext();
    const rp = await rater.newPage();
    await rp.goto(link);
    await rp.waitForSelector(`${testid('rater-screen')}[data-busy="false"]`);
    assert.equal(await rp.textContent(testid('rater-name')), 'Ann');
    assert.equal(await rp.textContent(testid('prompt')), 'Describe a loft.');
    await rater.close();
    // The app's own pages and commands are not on the shared address.
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404);
    const app = await fetch(`http://127.0.0.1:${port}/api/overview`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` },
      body: '{}',
    });
    assert.equal(app.status, 404);

    // A page opened later finds it shared.
    await page.reload();
    await page.waitForSelector(`${testid('review-share')}[data-shared="true"]`);
    await page.click(testid('share-stop'));
    await page.waitForSelector(`${testid('review-share')}[data-shared="false"]`);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/review`), 'the address still answers after Stop sharing');
    assert.deepEqual(errors, []);
  });

  test('a port another program holds is refused in plain words, and nothing is shared', async () => {
    const holder = createServer();
    await new Promise((r) => holder.listen(0, '127.0.0.1', r));
    const { port } = holder.address();
    try {
      await page.selectOption(testid('share-reach'), 'local');
      await page.fill(testid('share-port'), String(port));
      await page.click(testid('share-start'));
      await page.waitForSelector(`${testid('error-banner')}:visible`);
      assert.equal(await page.textContent(testid('error-code')), 'share_failed');
      assert.match(await page.textContent(testid('error-message')), new RegExp(`port ${port} is in use`));
      assert.equal(await page.getAttribute(testid('review-share'), 'data-shared'), 'false');
    } finally {
      await new Promise((r) => holder.close(r));
    }
    // The browser logs the refused request itself.
    errors.splice(0, errors.length, ...errors.filter((e) => !/status of 409/.test(e)));
    assert.deepEqual(errors, []);
  });
});
