// Evaluate and review in headless Chromium against the real `whet serve`, with a tiny random model: a
// short run is trained, evaluated from the Evaluate screen with its progress pushed, and its answers go
// to a blind review. Two people and a script rate through the raters' JSON API with their own invite
// tokens (as `whet serve --review` serves it), the organiser's screen follows them live, and the
// results agree with `whet review agreement` on the exported ratings. The raters' better answers become
// a new dataset version, and "Train again" opens the wizard with it and the run's settings.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../support/server.mjs';
import { enforceAppCsp, launchBrowser, screenshot } from '../support/browser.mjs';
import { writeTinyModel } from '../support/tiny-model.mjs';
import { binary } from '../support/paths.mjs';

const TIMEOUT = 20_000;
const TRAIN_TIMEOUT = 180_000;

function testid(id) {
  return `[data-testid="${id}"]`;
}

async function api(server, cmd, args = {}) {
  const res = await fetch(`${server.url}/api/${cmd}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` },
    body: JSON.stringify(args),
  });
  const body = await res.json();
  assert.equal(res.status, 200, `${cmd}: ${JSON.stringify(body)}`);
  return body;
}

/** A rater's call, as a script does it: the raters' JSON API with the invite token as its bearer. */
async function rater(reviewServer, token, cmd, args = {}) {
  const res = await fetch(`${reviewServer.url}/api/${cmd}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(args),
  });
  const body = await res.json();
  assert.equal(res.status, 200, `${cmd}: ${JSON.stringify(body)}`);
  return body;
}

const CRITERIA = ['factuality', 'relevance', 'coherence_fluency', 'safety_bias', 'instruction_adherence', 'empathy'];

/** Scores that differ between raters and items, so that agreement is neither perfect nor undefined. */
function scores(name, item, letter) {
  const offset = { Ana: 0, Ben: 1, robo: 3 }[name];
  return Object.fromEntries(CRITERIA.map((c, i) => [c, ((item * 2 + i + letter + offset) % 5) + 1]));
}

/** Rates every item of the rater's queue; Ana writes a better answer for her first one. */
async function rateAll(reviewServer, name, token) {
  let first = true;
  for (;;) {
    const view = await rater(reviewServer, token, 'review_next');
    if (view.item === null) return view.progress;
    const item = view.item.item;
    const rating = {
      item,
      a: { scores: scores(name, item, 0) },
      b: { scores: scores(name, item, 1), flags: item === 1 ? ['too_generic'] : [] },
      preference: (item + { Ana: 0, Ben: 1, robo: 0 }[name]) % 3 === 0 ? 'tie' : item % 2 === 0 ? 'a' : 'b',
      comment: `${name} on item ${item}`,
    };
    if (name === 'Ana' && first) rating.edited = `A better answer to question ${item}, written by Ana.`;
    first = false;
    await rater(reviewServer, token, 'review_submit', rating);
  }
}

/** Goes to a screen of the app already open in `page`, as following a link does. */
async function go(page, hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
}

const row = (prompt, response) => JSON.stringify({ prompt, response });

function writeData(dir) {
  const lines = [];
  for (let i = 1; i <= 20; i++) lines.push(row(`What is the status of order ${1000 + i}?`, `Order ${1000 + i} ships on day ${i}.`));
  const path = join(dir, 'orders.jsonl');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

describe('evaluate a run and review its answers', () => {
  let server;
  let reviewServer;
  let browser;
  let context;
  let page;
  let modelDir;
  let runId;
  let evaluationId;
  let sessionId;
  const tokens = {};
  const pageErrors = [];

  before(async () => {
    server = await startServer();
    reviewServer = await startServer({ review: { home: server.home } });
    modelDir = writeTinyModel(join(server.home, 'tiny-model'));
    await api(server, 'data_import', { path: writeData(server.home), name: 'orders' });
    await api(server, 'data_split', { dataset: 'orders', val: 0.15, test: 0.25, seed: 1 });
    const run = await api(server, 'start_run', {
      model: modelDir,
      data: 'orders',
      val: 'orders',
      settings: { steps: 4, batch: 2, 'max-len': 256, 'lora-r': 4, lr: 0.005, seed: 3, threads: 1 },
    });
    runId = run.id;
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
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
    await browser?.close();
    await reviewServer?.stop();
    await server?.close();
  });

  test('the trained run’s card offers an evaluation', async () => {
    await go(page, `#/runs/${runId}`);
    const card = testid(`run-${runId}`);
    await page.waitForSelector(`${card} ${testid('run-status')}:text-is("finished")`, { timeout: TRAIN_TIMEOUT });
    await page.waitForSelector(`${card} ${testid('run-latest-eval')}`);
    assert.match(await page.textContent(`${card} ${testid('run-latest-eval')}`), /Not evaluated yet/);
    await page.click(`${card} ${testid('run-evaluate')}`);
    await page.waitForSelector(testid('eval-form'));
    assert.equal(new URL(page.url()).hash, `#/evaluate/run/${runId}`);
    assert.equal(await page.inputValue(testid('eval-run')), String(runId));
    assert.ok(await page.isVisible(testid('eval-none')), 'no evaluation yet: the empty state says so');
  });

  test('an evaluation started from the screen shows its progress, then the figures side by side', async () => {
    await page.fill(testid('eval-limit'), '3');
    await page.fill(testid('eval-max-new'), '8');
    // Every value the progress bar takes, as the page draws it.
    await page.evaluate(() => {
      window.__progress = [];
      new MutationObserver(() => {
        const bar = document.querySelector('[data-testid="eval-progress-bar"]');
        if (bar) window.__progress.push([Number(bar.getAttribute('data-done')), Number(bar.getAttribute('data-total'))]);
      }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-done'] });
    });
    await page.click(testid('eval-start'));
    await page.waitForURL(/#\/evaluate\/\d+$/, { timeout: TRAIN_TIMEOUT });
    evaluationId = Number(new URL(page.url()).hash.split('/').pop());
    await page.waitForSelector(testid('eval-metrics'));

    // Three questions answered by base and tuned, plus each side's perplexity: 8 steps, drawn in order as
    // they are pushed (a tiny model answers so fast that several may arrive between two frames).
    const progress = await page.evaluate(() => window.__progress);
    const done = progress.map(([d]) => d);
    assert.ok(progress.some(([, t]) => t === 8), `the bar was drawn with the 8 steps to go: ${JSON.stringify(progress)}`);
    assert.equal(done[done.length - 1], 8, `the bar reached its end: ${JSON.stringify(progress)}`);
    assert.ok(done.every((d, i) => i === 0 || d >= done[i - 1]), `progress never goes back: ${done}`);
    assert.ok(progress.every(([, t]) => t === 0 || t === 8), `8 steps in all: ${JSON.stringify(progress)}`);

    const results = await api(server, 'eval_results', { id: evaluationId });
    assert.equal(results.evaluation.run_id, runId);
    assert.match(results.evaluation.source, /`orders` version \d+, test split/);
    assert.deepEqual(results.evaluation.sides.map((s) => s.side), ['base', 'tuned']);
    for (const side of results.evaluation.sides) {
      const cell = (key) => page.getAttribute(`${testid(`metric-${key}`)} td[data-side="${side.side}"]`, 'data-value');
      assert.equal(Number(await cell('perplexity')), side.perplexity);
      assert.equal(Number(await cell('rouge_l')), side.text.rouge_l);
      assert.equal(Number(await cell('bleu')), side.text.bleu);
      assert.equal(Number(await cell('exact_match')), side.text.exact_match);
    }
    // Each figure says what it measures.
    for (const key of ['perplexity', 'rouge1', 'rouge2', 'rouge_l', 'rouge_lsum', 'bleu', 'chrf', 'meteor', 'f1', 'exact_match']) {
      assert.ok((await page.textContent(`${testid(`metric-${key}`)} td.explain`)).length > 30, `${key} has no explanation`);
    }
    assert.equal(await page.locator(testid('eval-item')).count(), 3);
    const prompts = await page.locator(testid('eval-item-prompt')).allTextContents();
    assert.deepEqual(prompts, results.items.map((i) => i.prompt));
    const tuned = await page.locator(testid('eval-item-tuned')).allTextContents();
    results.items.forEach((item, i) => {
      const text = item.outputs.find((o) => o.side === 'tuned').text;
      assert.ok(tuned[i].includes(text.trim()), `item ${i + 1}: the tuned answer is shown`);
    });
    await screenshot(page, 'evaluate');

    // The CSV downloads as the API writes it.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click(testid('eval-export-download-csv'))]);
    assert.equal(download.suggestedFilename(), `evaluation-${evaluationId}.csv`);
    const csv = readFileSync(await download.path(), 'utf8');
    const { status, body } = await fetch(`${server.url}/api/eval_export`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` },
      body: JSON.stringify({ id: evaluationId, format: 'csv' }),
    }).then(async (r) => ({ status: r.status, body: await r.json() }));
    assert.equal(status, 200);
    assert.equal(csv, body);

    // The run's card names its latest evaluation.
    await go(page, `#/runs/${runId}`);
    await page.waitForSelector(`${testid(`run-${runId}`)} ${testid('run-latest-eval-link')}`);
    assert.equal(await page.textContent(`${testid(`run-${runId}`)} ${testid('run-latest-eval-link')}`), `#${evaluationId}`);
  });

  test('answers taken as labels get precision, recall and F1 per label', async () => {
    await go(page, `#/evaluate/run/${runId}`);
    await page.waitForSelector(testid('eval-form'));
    await page.fill(testid('eval-limit'), '3');
    await page.fill(testid('eval-max-new'), '4');
    await page.check(testid('eval-labels'));
    await page.click(testid('eval-start'));
    await page.waitForURL((url) => /#\/evaluate\/\d+$/.test(url.hash) && url.hash !== `#/evaluate/${evaluationId}`, { timeout: TRAIN_TIMEOUT });
    const id = Number(new URL(page.url()).hash.split('/').pop());
    await page.waitForSelector(testid('eval-labels-table'));
    const { evaluation } = await api(server, 'eval_results', { id });
    const labels = new Set(evaluation.sides.flatMap((s) => s.labels.per_label.map((l) => l.label)));
    assert.equal(await page.locator(testid('eval-label')).count(), labels.size);
    for (const side of evaluation.sides) {
      assert.equal(await page.textContent(`${testid('eval-label-accuracy')}[data-side="${side.side}"]`), side.labels.micro_avg.f1.toFixed(2));
    }
  });

  test('a review session is created from the evaluation, with a criterion added', async () => {
    await go(page, `#/evaluate/${evaluationId}`);
    await page.click(testid('eval-start-review'));
    await page.waitForSelector(testid('review-create'));
    assert.equal(new URL(page.url()).hash, `#/review/new/${evaluationId}`);
    assert.equal(await page.inputValue(testid('review-evaluation')), String(evaluationId));
    assert.equal(await page.inputValue(testid('review-baseline')), 'base');
    assert.equal(await page.inputValue(testid('review-candidate')), 'tuned');
    const rubric = await api(server, 'review_rubric');
    assert.equal(await page.locator(`${testid('review-rubric')} li`).count(), rubric.criteria.length);
    await page.fill(testid('review-criterion-label'), 'Empathy');
    await page.fill(testid('review-criterion-description'), 'It acknowledges how the customer feels.');
    await page.click(testid('review-criterion-add'));
    await page.waitForSelector(testid('review-extra-criterion'));
    await page.fill(testid('review-name'), 'Order answers');
    await page.fill(testid('review-k'), '3');
    await page.click(testid('review-create-start'));
    await page.waitForURL(/#\/review\/\d+$/);
    sessionId = Number(new URL(page.url()).hash.split('/').pop());
    await page.waitForSelector(testid('review-no-raters'));
    const status = await api(server, 'review_status', { id: sessionId });
    assert.deepEqual(status.session.criteria.map((c) => c.key), CRITERIA);
    assert.equal(status.session.raters_per_item, 3);
  });

  test('raters are invited, each link is shown once with a Copy button, and their rating shows live', async () => {
    await page.fill(testid('invite-base'), reviewServer.url);
    for (const [name, kind] of [['Ana', 'human'], ['Ben', 'human'], ['robo', 'machine']]) {
      await page.fill(testid('invite-name'), name);
      await page.selectOption(testid('invite-kind'), kind);
      await page.click(testid('invite-start'));
      const link = await page.locator(`${testid('invitation')}[data-rater="${name}"] ${testid('invitation-link')}`).inputValue();
      const match = new RegExp(`^${reviewServer.url.replace(/[.]/g, '\\.')}/review#token=([0-9a-f]{64})$`).exec(link);
      assert.ok(match, `the link carries the token in its fragment: ${link}`);
      tokens[name] = match[1];
      await page.waitForSelector(testid(`rater-${name}`));
    }
    // Copy puts the link on the clipboard.
    await page.click(`${testid('invitation')}[data-rater="Ben"] ${testid('invitation-copy')}`);
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `${reviewServer.url}/review#token=${tokens.Ben}`);
    // The link opens the review page that raters use.
    const reviewPage = await fetch(`${reviewServer.url}/review`);
    assert.equal(reviewPage.status, 200);
    assert.match(reviewPage.headers.get('content-type'), /text\/html/);
    await screenshot(page, 'review-invitations');

    // Each rating a rater submits reaches the organiser's screen without a reload or a click.
    for (const name of ['Ana', 'Ben', 'robo']) {
      assert.equal(await page.textContent(`${testid(`rater-${name}`)} ${testid('rater-progress')}`), '0 of 3');
    }
    const progress = await rateAll(reviewServer, 'Ana', tokens.Ana);
    assert.equal(progress.text, '3 of 3');
    await page.waitForSelector(`${testid('rater-Ana')}[data-rated="3"]`);
    assert.equal(await page.textContent(`${testid('rater-Ana')} ${testid('rater-state')}`), 'Done');
    assert.equal(await page.textContent(`${testid('rater-Ben')} ${testid('rater-progress')}`), '0 of 3');
    await rateAll(reviewServer, 'Ben', tokens.Ben);
    await rateAll(reviewServer, 'robo', tokens.robo);
    await page.waitForSelector(`${testid('rater-Ben')}[data-rated="3"]`);
    await page.waitForSelector(`${testid('rater-robo')}[data-rated="3"]`);
    assert.equal(await page.textContent(testid('review-complete')), '3');
    assert.equal(await page.textContent(testid('review-ratings')), '9');
    await screenshot(page, 'review-organiser');

    // A revoked link stops working at once.
    await page.click(`${testid('rater-robo')} ${testid('rater-revoke')}`);
    await page.click(`${testid('rater-robo')} ${testid('rater-revoke-yes')}`);
    await page.waitForSelector(`${testid('rater-robo')} ${testid('rater-state')}:text-is("Link revoked")`);
    const refused = await fetch(`${reviewServer.url}/api/review_progress`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.robo}` },
      body: '{}',
    });
    assert.equal(refused.status, 401);
  });

  test('closing the session, the results show people and the script apart, with the agreement whet computes', async () => {
    await page.click(testid('review-close'));
    await page.click(testid('review-close-yes'));
    await page.waitForSelector(`${testid('review-session')}[data-closed="true"]`);
    const closed = await fetch(`${reviewServer.url}/api/review_submit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.Ana}` },
      body: JSON.stringify({ item: 1, preference: 'a' }),
    });
    assert.equal(closed.status, 409);
    await page.click(testid('review-results-link'));
    await page.waitForSelector(testid('results-human-criteria'));
    assert.equal(await page.getAttribute(testid('results-human'), 'data-raters'), '2');
    assert.equal(await page.getAttribute(testid('results-human'), 'data-ratings'), '6');
    // The script's ratings stay out of people's figures: the revoked script's ratings still count as a machine's.
    assert.equal(await page.getAttribute(testid('results-machine'), 'data-raters'), '1');

    const results = await api(server, 'review_results', { id: sessionId });
    const shownAlpha = async (key, kind) => page.textContent(`${testid('results-human-criteria')} ${testid(`criterion-${key}`)} ${testid(`alpha-${kind}`)}`);
    for (const c of results.human.criteria) {
      assert.equal(await shownAlpha(c.key, 'ordinal'), c.agreement.ordinal === null ? '—' : c.agreement.ordinal.toFixed(3));
      assert.equal(await shownAlpha(c.key, 'nominal'), c.agreement.nominal === null ? '—' : c.agreement.nominal.toFixed(3));
    }
    const win = results.human.preference.candidate_win_rate;
    assert.match(await page.textContent(testid('results-human-win-rate')), new RegExp(`wins ${Math.round(win.mean * 100)}% \\(${Math.round(win.low * 100)}% to ${Math.round(win.high * 100)}%\\)`));

    // The CSV the page downloads is what `whet review agreement` reads; on people's rows it gives the same alpha.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click(testid('review-export-download-csv'))]);
    const csv = readFileSync(await download.path(), 'utf8').trim().split('\n');
    const header = csv[0].split(',');
    const kindColumn = header.indexOf('kind');
    const people = [csv[0], ...csv.slice(1).filter((l) => l.split(',')[kindColumn] === 'human')];
    const file = join(server.home, 'people.csv');
    writeFileSync(file, people.join('\n') + '\n');
    const whet = JSON.parse(execFileSync(binary('whet', 'WHET_BIN'), ['review', 'agreement', file, '--json'], { encoding: 'utf8' }));
    assert.equal(whet.length, CRITERIA.length + 1, 'every criterion and the preference');
    let defined = 0;
    for (const a of whet) {
      const key = a.criterion;
      assert.equal(await shownAlpha(key, 'ordinal'), a.ordinal === null ? '—' : a.ordinal.toFixed(3), `${key} ordinal`);
      assert.equal(await shownAlpha(key, 'nominal'), a.nominal === null ? '—' : a.nominal.toFixed(3), `${key} nominal`);
      if (a.ordinal !== null) defined++;
    }
    assert.ok(defined >= 3, `most criteria have an alpha: ${JSON.stringify(whet)}`);
    await screenshot(page, 'review-results');
  });

  test('accepted edits become a new dataset version, and Train again opens the wizard with it and the run’s settings', async () => {
    const before = await api(server, 'data_versions', { dataset: 'orders' });
    await page.waitForSelector(testid('edits-accept'));
    assert.equal(await page.locator(testid('edit-accept')).count(), 1);
    await page.click(testid('edits-accept'));
    await page.waitForSelector(testid('edits-accepted'));
    const after = await api(server, 'data_versions', { dataset: 'orders' });
    assert.equal(after.length, before.length + 1);
    const version = after[after.length - 1];
    assert.equal(await page.textContent(testid('edits-version')), String(version.version));
    assert.equal(await page.textContent(testid('edits-dataset')), 'orders');
    assert.equal(version.steps[0].step, 'review');
    assert.equal(version.steps[0].session, sessionId);
    assert.match(await page.textContent(testid('edits-provenance')), /row 1 by Ana/);

    const run = await api(server, 'get_run', { id: runId });
    await page.click(testid('train-again'));
    await page.waitForSelector(testid('wizard-goal'));
    assert.equal(new URL(page.url()).hash, '#/new/goal');
    assert.equal(await page.inputValue(testid('goal-name')), `Run #${runId} again`);
    await page.click(testid('step-link-model'));
    await page.waitForSelector(`${testid('model-option')}.selected[data-ref="${modelDir}"]`);
    await page.click(testid('step-link-data'));
    await page.waitForSelector(testid('data-chosen'));
    assert.equal(await page.textContent(testid('data-name')), 'orders');
    assert.match(await page.textContent(testid('data-chosen')), new RegExp(`version ${version.version}:`));
    assert.equal(await page.textContent(testid('data-rows')), '1');
    await page.click(testid('step-link-settings'));
    await page.waitForSelector(testid('main-settings'));
    assert.equal(Number(await page.inputValue(testid('setting-steps-input'))), run.config.settings.steps);
    assert.equal(Number(await page.inputValue(testid('setting-lr-input'))), run.config.settings.lr);
    assert.ok(await page.isChecked(testid('method-lora')));
  });

  test('the screens ran without script or content-policy errors', async () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
  });
});
