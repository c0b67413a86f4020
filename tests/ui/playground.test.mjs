// The playground in headless Chromium against the real `whet serve`: a short run of the tiny random
// model is trained, then one prompt is answered by its base model and by the tuned one, and both
// columns must fill piece by piece as the server pushes the answers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../support/server.mjs';
import { enforceAppCsp, launchBrowser, screenshot } from '../support/browser.mjs';
import { writeTinyModel } from '../support/tiny-model.mjs';

const TIMEOUT = 30_000;
const SIDES = ['base', 'tuned'];
const PROMPT = 'Write a short listing for a hand-made oak chair.';

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

/** Records every text each column shows, in order, as the page changes it. */
async function watchColumns(page) {
  await page.evaluate((sides) => {
    window.__columns = Object.fromEntries(sides.map((s) => [s, []]));
    window.__columnsObserver?.disconnect();
    const read = () => {
      for (const side of sides) {
        const el = document.querySelector(`[data-testid="answer-${side}-text"]`);
        // The caret shown while writing is not part of the answer.
        const text = (el?.textContent ?? '').replace('▍', '');
        const seen = window.__columns[side];
        if (seen[seen.length - 1] !== text) seen.push(text);
      }
    };
    window.__columnsObserver = new MutationObserver(read);
    window.__columnsObserver.observe(document.body, { subtree: true, childList: true, characterData: true });
  }, SIDES);
}

describe('the playground', () => {
  let server;
  let browser;
  let page;
  let run;
  // The greedy answers of the second test, from the command table.
  let greedy;
  const pageErrors = [];

  before(async () => {
    server = await startServer();
    // The server reads only inside its home folder: the model and the data go there.
    const model = writeTinyModel(join(server.home, 'tiny-model'));
    const row = (prompt, response) => JSON.stringify({ prompt, response });
    const data = join(server.home, 'listings.jsonl');
    writeFileSync(
      data,
      [
        row('Describe a blue mug.', 'A sturdy blue stoneware mug that holds a large coffee.'),
        row('Describe a wool scarf.', 'A soft merino scarf, long enough to wrap twice.'),
        row('Describe a desk lamp.', 'A brass lamp with a warm light and a long arm.'),
        row('Describe a linen shirt.', 'A loose linen shirt that stays cool in summer.'),
      ].join('\n') + '\n',
    );
    const started = await api(server, 'start_run', {
      model,
      data,
      settings: { steps: 2, batch: 2, 'max-len': 64, 'lora-r': 4, lr: 0.01, seed: 1 },
    });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const deadline = Date.now() + 120_000;
    for (;;) {
      ({ body: run } = await api(server, 'get_run', { id: started.body.id }));
      if (!['queued', 'running'].includes(run.status)) break;
      if (Date.now() > deadline) throw new Error(`run still ${run.status} after 120 s`);
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(run.status, 'completed', `run ended ${run.status}: ${run.error}`);

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

  test("a finished run's card opens the playground for that run", async () => {
    await page.click(testid('nav-runs'));
    await page.waitForSelector(testid('runs-playground'));
    await page.click(`${testid(`run-${run.id}`)} ${testid('run-compare')}`);
    await page.waitForSelector(testid('playground-view'));
    assert.equal(new URL(page.url()).hash, `#/playground/${run.id}`);
    assert.equal(await page.inputValue(testid('playground-run')), String(run.id));
    assert.equal(await page.textContent('#answer-tuned-title'), `Tuned (run ${run.id})`);
    assert.equal(await page.textContent('#answer-base-title'), 'Base model');
    // Every control has a visible label and a line that says what it does.
    for (const id of ['playground-prompt', 'playground-temperature', 'playground-length', 'playground-run']) {
      const label = await page.$eval(testid(id), (el) => el.closest('label')?.innerText.trim() ?? '');
      assert.ok(label.length > 3, `${id} has no visible label`);
    }
    for (const id of ['playground-prompt', 'playground-temperature', 'playground-length']) {
      const help = await page.$eval(testid(id), (el) => document.getElementById(el.getAttribute('aria-describedby') ?? '')?.textContent ?? '');
      assert.ok(help.trim().length > 20, `${id} has no explanation`);
    }
    // Nothing to answer yet: Generate waits for a prompt.
    assert.equal(await page.isDisabled(testid('playground-generate')), true);
    assert.equal(await page.isDisabled(testid('playground-stop')), true);
  });

  test('both columns fill piece by piece and end with their pace, as the backend answers greedily', async () => {
    await page.fill(testid('playground-prompt'), PROMPT);
    await page.fill(testid('playground-length'), '600');
    await watchColumns(page);
    await page.click(testid('playground-generate'));
    for (const side of SIDES) {
      await page.waitForFunction((s) => /tokens\/s/.test(document.querySelector(`[data-testid="answer-${s}-speed"]`)?.textContent ?? ''), side, {
        timeout: 60_000,
      });
    }
    await page.waitForFunction(() => document.querySelector('[data-testid="playground-status"]')?.textContent === 'Both answers are complete.');
    const seen = await page.evaluate(() => window.__columns);
    // The same prompt and settings through the command table: greedy, so the very same answers.
    const { status, body: whole } = await api(server, 'playground', { run: run.id, prompt: PROMPT, max_new_tokens: 600, temperature: 0 });
    assert.equal(status, 200, JSON.stringify(whole));
    greedy = whole;
    for (const side of SIDES) {
      const final = await page.textContent(testid(`answer-${side}-text`));
      assert.equal(final, whole[side].text, `${side}: the column differs from the answer`);
      const partial = seen[side].filter((t) => t !== '' && t !== final);
      assert.ok(partial.length >= 2, `${side}: only ${partial.length} partial states were shown before the end`);
      for (const t of partial) assert.ok(final.startsWith(t), `${side}: a partial state is not a beginning of the answer`);
      const speed = await page.textContent(testid(`answer-${side}-speed`));
      assert.match(speed, new RegExp(`^${whole[side].tokens.toLocaleString('en-US')} tokens · \\d+\\.\\d tokens/s · `));
    }
    assert.match(await page.textContent(testid('playground-setup')), /The prompt is \d+ tokens in the model's chat format\./);
    await screenshot(page, 'playground');
  });

  test('Ctrl+Enter writes from the keyboard, Stop ends both answers early, and Generate is offered again', async () => {
    // Greedy, so the answers are those of the test before, which ran to their full 600 tokens: at 900
    // both are still being written when Stop is pressed.
    assert.deepEqual([greedy.base.end, greedy.tuned.end], ['length', 'length'], 'the greedy answers ended early');
    await page.fill(testid('playground-length'), '900');
    await page.focus(testid('playground-prompt'));
    // The tiny model writes a thousand tokens a second: Stop is pressed from inside the page the moment
    // the tuned column shows some text, not after a round trip to the test.
    const pressed = page.evaluate(
      () =>
        new Promise((resolve) => {
          const column = document.querySelector('[data-testid="answer-tuned-text"]');
          const observer = new MutationObserver(() => {
            if ((column?.textContent ?? '').length <= 20) return;
            observer.disconnect();
            const stop = document.querySelector('[data-testid="playground-stop"]');
            const enabled = stop instanceof HTMLButtonElement && !stop.disabled;
            stop?.click();
            resolve(enabled);
          });
          observer.observe(document.body, { subtree: true, childList: true, characterData: true });
        }),
    );
    await page.keyboard.press('Control+Enter');
    assert.equal(await pressed, true, 'Stop was not offered while the answers were being written');
    await page.waitForFunction(() => document.querySelector('[data-testid="playground-status"]')?.textContent === 'Stopped.');
    assert.equal(await page.isDisabled(testid('playground-generate')), false);
    assert.equal(await page.isDisabled(testid('playground-stop')), true);
    // What the columns hold stays: a beginning of the greedy answer, shorter than its 900 tokens, and no error is shown.
    for (const side of SIDES) {
      const shown = (await page.textContent(testid(`answer-${side}-text`))).replace('▍', '');
      assert.ok(greedy[side].text.startsWith(shown.slice(0, 100)), `${side}: the stopped answer is not the greedy one`);
      assert.doesNotMatch(await page.textContent(testid(`answer-${side}-speed`)), /longest answer allowed/);
    }
    assert.equal(await page.isVisible(testid('playground-error')), false);
  });

  test('temperature is set from the keyboard and a sampled answer reports its seed', async () => {
    await page.focus(testid('playground-temperature'));
    for (let i = 0; i < 7; i++) await page.keyboard.press('ArrowRight');
    assert.equal(await page.textContent(testid('playground-temperature-value')), '0.7');
    await page.fill(testid('playground-length'), '5');
    await page.focus(testid('playground-length'));
    await page.keyboard.press('Control+Enter');
    await page.waitForFunction(() => document.querySelector('[data-testid="playground-status"]')?.textContent === 'Both answers are complete.');
    assert.match(await page.textContent(testid('playground-setup')), /both sides sample with seed \d+/);
    for (const side of SIDES) {
      assert.match(await page.textContent(testid(`answer-${side}-speed`)), /^[1-5] tokens? · /);
    }
    await page.focus(testid('playground-temperature'));
    await page.keyboard.press('Home');
    assert.equal(await page.textContent(testid('playground-temperature-value')), '0.0');
  });

  test('a refused request is shown in plain words, and the Runs screen reaches the playground', async () => {
    const tooLong = 'x'.repeat(1000);
    await page.fill(testid('playground-prompt'), tooLong);
    await page.fill(testid('playground-length'), '600');
    await page.click(testid('playground-generate'));
    await page.waitForSelector(testid('playground-error'));
    assert.match(await page.textContent(testid('playground-error')), /reads at most 1024 tokens at once.*invalid_input/);
    assert.equal(await page.isDisabled(testid('playground-generate')), false);

    await page.click(testid('nav-runs'));
    await page.click(`${testid('runs-playground')} a`);
    await page.waitForSelector(testid('playground-view'));
    assert.equal(await page.inputValue(testid('playground-run')), String(run.id));
  });

  test('the pages ran without script or policy errors', async () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
  });
});
