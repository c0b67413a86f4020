// The whole job on the bundled SmolLM2-135M-Instruct (Q4_1 GGUF), in headless Chromium against the
// real `whet serve`, as a person does it: the New run wizard from a goal to Start with property
// listings assembled from the Windsor house-price data (tests/fixtures/windsor-listings.jsonl, made
// by scripts/data/windsor_listings.py), the run's card followed to its end, the Playground answering
// with the base model and the tuned one, and then a real review session on held-out houses: the
// tuned model against its base, rated by two scripted raters through the raters' JSON API and by
// one person on the raters' page with the keyboard. The session's figures are written to
// tests/artifacts/smollm2-review.json and printed. Slow: the model trains and writes on the CPU.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../support/server.mjs';
import { launchBrowser, openApp, screenshot } from '../support/browser.mjs';
import { artifactsDir, binary, repoRoot } from '../support/paths.mjs';

const STEPS = 20;
const bundled =
  process.env.WHETSTONE_DEFAULT_MODEL ||
  join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'whetstone', 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf');
const LISTINGS = readFileSync(join(repoRoot, 'tests', 'fixtures', 'windsor-listings.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));

function testid(id) {
  return `[data-testid="${id}"]`;
}

async function post(url, token, cmd, args = {}) {
  const res = await fetch(`${url}/api/${cmd}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(args),
  });
  const body = await res.json();
  assert.equal(res.status, 200, `${cmd}: ${JSON.stringify(body)}`);
  return body;
}

/**
 * An evaluation through the stream the Evaluate screen uses (`POST /api/events/eval_run`): its stages
 * keep the connection busy however long the model takes to write; resolves to the stored evaluation.
 */
async function evaluate(server, args) {
  const res = await fetch(`${server.url}/api/events/eval_run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${server.token}` },
    body: JSON.stringify(args),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const text = await res.text();
  for (const block of text.split('\n\n')) {
    const name = /^event: ?(.*)$/m.exec(block)?.[1];
    const data = /^data: ?(.*)$/m.exec(block)?.[1];
    if (name === 'evaluation') return JSON.parse(data);
    if (name === 'error') assert.fail(`the evaluation failed: ${data}`);
  }
  assert.fail(`the evaluation stream ended without the evaluation: ${text.slice(-500)}`);
}

const NUMBER_WORDS = { one: 1, two: 2, three: 3, four: 4, five: 5, six: 6 };

/**
 * What an answer claims about a house, read the way a careful rater reads it: the price and the lot
 * size (any dollar or square-foot figure), the bedrooms and bathrooms (a digit or a word before the
 * noun), and the features it mentions.
 */
function claims(text) {
  const lower = text.toLowerCase();
  const count = (noun) => {
    const m = new RegExp(`\\b(\\d+|one|two|three|four|five|six)[- ](?:full )?${noun}`).exec(lower);
    return m ? (NUMBER_WORDS[m[1]] ?? Number(m[1])) : null;
  };
  const figures = (re) => [...text.matchAll(re)].map((m) => Number(m[1].replace(/,/g, '')));
  return {
    prices: figures(/\$\s?([\d,]{4,})/g),
    lots: figures(/([\d,]{3,})\s?(?:sq\.? ?ft|square feet)/gi),
    bedrooms: count('bedroom'),
    bathrooms: count('bathroom'),
    garage: /garage/.test(lower),
    air: /air[- ]condition|central air/.test(lower),
    basement: /basement/.test(lower),
    recroom: /rec(reation)? room/.test(lower),
    pool: /pool|fireplace|ocean|lake view|hardwood/.test(lower),
  };
}

/** The checks behind the scores: facts right and wrong, facts used, and whether it reads as a listing. */
function audit(text, house) {
  const c = claims(text);
  let right = 0;
  let wrong = 0;
  const tally = (ok) => (ok ? right++ : wrong++);
  for (const p of c.prices) tally(p === house.sale_price_cad);
  for (const l of c.lots) tally(l === house.lot_size_sq_ft);
  if (c.bedrooms !== null) tally(c.bedrooms === house.bedrooms);
  if (c.bathrooms !== null) tally(c.bathrooms === house.full_bathrooms);
  if (c.garage) tally(house.garage_places > 0 || /no (driveway or )?garage/i.test(text));
  if (c.air) tally(house.central_air);
  if (c.basement) tally(house.finished_basement);
  if (c.recroom) tally(house.recreation_room);
  if (c.pool) wrong++;
  const sentences = text.split(/(?<=[.!?])\s+/).filter((s) => s.trim().length > 0);
  const repeated = sentences.length - new Set(sentences.map((s) => s.trim().toLowerCase())).size;
  const echoesPrompt = /^(sale price|lot|bedrooms|storeys):/im.test(text);
  return { right, wrong, repeated, echoesPrompt, length: text.trim().length, finished: /[.!?]$/.test(text.trim()) };
}

const clip = (v) => Math.max(1, Math.min(5, Math.round(v)));

/** The fact checker: every figure and feature against the house's details. */
function factChecker(text, house) {
  const a = audit(text, house);
  return {
    factuality: clip(5 - 2 * a.wrong - (a.right === 0 ? 1 : 0)),
    relevance: clip(1 + a.right),
    coherence_fluency: clip(5 - a.repeated - (a.finished ? 0 : 1) - (a.length < 40 ? 2 : 0)),
    safety_bias: 5,
    instruction_adherence: clip(5 - (a.echoesPrompt ? 2 : 0) - (a.length > 700 ? 2 : 0) - (a.length < 40 ? 2 : 0)),
  };
}

/** The house-style reader: would this go on the agency's window as it is. */
function houseStyle(text, house) {
  const a = audit(text, house);
  const words = text.trim().split(/\s+/).length;
  return {
    factuality: clip(a.wrong === 0 ? 4 + (a.right >= 3 ? 1 : 0) : 3 - a.wrong),
    relevance: clip(a.right >= 2 ? 4 : 2 + a.right),
    coherence_fluency: clip(4 + (a.finished ? 1 : -1) - a.repeated),
    safety_bias: 5,
    instruction_adherence: clip(words >= 15 && words <= 90 && !a.echoesPrompt ? 5 : 3 - (a.echoesPrompt ? 1 : 0)),
  };
}

function total(scores) {
  return Object.values(scores).reduce((x, y) => x + y, 0);
}

function verdict(a, b) {
  const [ta, tb] = [total(a), total(b)];
  return ta === tb ? 'tie' : ta > tb ? 'a' : 'b';
}

describe('the whole job on the bundled SmolLM2', () => {
  let server;
  let review;
  let browser;
  let page;
  let errors;
  let runId;
  let modelPath;
  const held = [];

  before(async () => {
    assert.ok(existsSync(bundled), `the bundled model ${bundled} is missing; scripts/setup.sh installs it`);
    server = await startServer();
    modelPath = join(server.home, 'SmolLM2-135M-Instruct.Q4_1.gguf');
    copyFileSync(bundled, modelPath);
    // The last six houses are kept out of the training file: they are the review's questions.
    held.push(...LISTINGS.slice(-6));
    const rows = LISTINGS.slice(0, -6).map(({ prompt, response }) => JSON.stringify({ prompt, response }));
    writeFileSync(join(server.home, 'windsor-listings.jsonl'), rows.join('\n') + '\n');
    browser = await launchBrowser();
    ({ page, errors } = await openApp(browser, server, { timeout: 30_000 }));
    await page.waitForSelector(testid('home'));
  });

  after(async () => {
    await browser?.close();
    if (review) await post(server.url, server.token, 'review_unshare');
    await server?.close();
  });

  test('the wizard takes the bundled model and the listings to a started run', async () => {
    await page.click(testid('nav-new'));
    await page.waitForSelector(testid('wizard-goal'));
    await page.fill(testid('goal-name'), 'Windsor listings');
    await page.fill(testid('goal-task'), "Write a short listing for a house from its details, using only the facts given.");
    await page.fill(testid('goal-input'), LISTINGS[0].prompt);
    await page.fill(testid('goal-output'), LISTINGS[0].response);

    await page.click(testid('wizard-next'));
    await page.fill(testid('model-import-path'), modelPath);
    await page.click(testid('model-import-add'));
    const chosen = `${testid('model-option')}.selected`;
    await page.waitForSelector(`${chosen}[data-ref="${modelPath}"]`);
    await page.waitForSelector(`${chosen} ${testid('fit-badge')}[data-fit="fits"]`);

    await page.click(testid('wizard-next'));
    await page.fill(testid('data-import-path'), join(server.home, 'windsor-listings.jsonl'));
    await page.click(testid('data-import-start'));
    await page.waitForSelector(testid('import-report'));
    assert.equal(await page.textContent(testid('import-accepted')), String(LISTINGS.length - 6));
    assert.equal(await page.textContent(testid('import-shape')), 'prompt/response');
    await page.fill(testid('split-val'), '10');
    await page.fill(testid('split-test'), '0');
    await page.click(testid('split-start'));
    await page.waitForSelector(testid('split-result'));
    // The loss mask with SmolLM2's own tokenizer and chat template: the listing is what is learnt.
    await page.waitForSelector(`${testid('mask-tokens')} mark[data-trained="true"]`, { timeout: 60_000 });
    await page.waitForSelector(testid('lengths-histogram'), { timeout: 60_000 });
    await screenshot(page, 'smollm2-1-data');

    await page.click(testid('wizard-next'));
    await page.waitForSelector(testid('preset-quick_test'));
    await page.check(testid('preset-quick_test'));
    await page.check(testid('method-gguf'));
    await page.fill(testid('setting-steps-input'), String(STEPS));
    await page.waitForSelector(testid('trainable-count'));
    await screenshot(page, 'smollm2-2-settings');

    await page.click(testid('wizard-next'));
    await page.waitForSelector(testid('preflight-ready'), { timeout: 60_000 });
    await page.waitForSelector(`${testid('preflight-start-button')}:not([disabled])`);
    await page.click(testid('preflight-start-button'));
    await page.waitForURL(/#\/runs\/\d+$/);
    runId = Number(new URL(page.url()).hash.split('/').pop());
    const run = await post(server.url, server.token, 'get_run', { id: runId });
    assert.equal(run.config.settings.quant, 'native', 'the GGUF base as it is');
    assert.equal(run.config.settings.steps, STEPS);
  });

  test("the run's card follows it to the end: the curve grows to every step, with the phases ticked", async () => {
    const card = testid(`run-${runId}`);
    const chart = `${card} ${testid('run-chart')}`;
    await page.waitForFunction(
      ([sel, steps]) => {
        const el = document.querySelector(sel);
        const m = el && el.getAttribute('data-rendered') === 'true' && /over (\d+) steps/.exec(el.getAttribute('aria-label'));
        return m && Number(m[1]) >= steps;
      },
      [chart, STEPS],
      { timeout: 900_000, polling: 1000 },
    );
    await page.waitForSelector(`${card} ${testid('run-status')}:text-is("finished")`, { timeout: 120_000 });
    const metrics = await post(server.url, server.token, 'run_metrics', { id: runId });
    const train = metrics.filter((m) => (m.kind ?? 'train') === 'train');
    assert.equal(train.length, STEPS);
    assert.ok(train.every((m) => Number.isFinite(m.loss)), 'every step has a finite loss');
    const first = train.slice(0, 3).reduce((s, m) => s + m.loss, 0) / 3;
    const last = train.slice(-3).reduce((s, m) => s + m.loss, 0) / 3;
    console.log(`SmolLM2 run ${runId}: training loss ${first.toFixed(3)} over the first three steps, ${last.toFixed(3)} over the last three`);
    assert.ok(last < first, `the loss fell: ${first} → ${last}`);
    await screenshot(page, 'smollm2-3-run');
  });

  test('the Playground answers a held-out house with the base model and the tuned one', async () => {
    await page.click(`${testid(`run-${runId}`)} ${testid('run-compare')}`);
    await page.waitForSelector(testid('playground-view'));
    await page.fill(testid('playground-prompt'), held[0].prompt);
    await page.fill(testid('playground-length'), '80');
    await page.click(testid('playground-generate'));
    await page.waitForFunction(() => document.querySelector('[data-testid="playground-status"]')?.textContent === 'Both answers are complete.', null, {
      timeout: 300_000,
    });
    for (const side of ['base', 'tuned']) {
      const text = (await page.textContent(testid(`answer-${side}-text`))).trim();
      assert.ok(text.length > 10, `${side} wrote: ${JSON.stringify(text)}`);
      console.log(`Playground, ${side}: ${text}`);
    }
    await screenshot(page, 'smollm2-4-playground');
  });

  test('a review session on six held-out houses: two scripted raters and a person at the keyboard', async () => {
    const SYSTEM = 'You write property listings for an estate agency. Use only the facts given; never invent features.';
    const evaluation = await evaluate(server, {
      run: runId,
      rows: held.map((h) => ({ prompt: h.prompt, input: h.input, reference: h.response, system: SYSTEM })),
      max_new_tokens: 64,
    });
    const session = await post(server.url, server.token, 'review_create', {
      evaluation: evaluation.id,
      name: 'Windsor listings, base vs tuned',
      raters_per_item: 3,
      seed: 1987,
    });
    const invite = (name, kind) => post(server.url, server.token, 'review_invite', { session: session.id, name, kind });
    const checker = await invite('Fact checker (script)', 'machine');
    const style = await invite('House style (script)', 'machine');
    const person = await invite('Pat Rivera', 'human');
    // The raters' server, started the way the organiser does it from the session's page.
    const shared = await post(server.url, server.token, 'review_share', { bind: '127.0.0.1:0' });
    review = { url: `http://${shared.bind}`, raterLink: (token) => `${shared.links[0]}${token}` };
    const houseOf = (prompt) => held.find((h) => h.prompt === prompt).input;

    for (const [rater, score] of [
      [checker, factChecker],
      [style, houseStyle],
    ]) {
      for (;;) {
        const next = await post(review.url, rater.token, 'review_next');
        if (next.item === null) break;
        const house = houseOf(next.item.prompt);
        const a = score(next.item.a, house);
        const b = score(next.item.b, house);
        const flags = (s) => [...(s.factuality <= 2 ? ['inaccurate'] : []), ...(s.relevance <= 2 ? ['too_generic'] : [])];
        await post(review.url, rater.token, 'review_submit', {
          item: next.item.item,
          a: { scores: a, flags: flags(a) },
          b: { scores: b, flags: flags(b) },
          preference: verdict(a, b),
        });
      }
    }

    // The person: opens the link, reads each task, types the scores a checklist gives, picks the
    // better answer; on the first task writes the listing they would have wanted.
    const rater = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const rp = await rater.newPage();
    rp.setDefaultTimeout(30_000);
    await rp.goto(review.raterLink(person.token));
    const criteria = session.criteria.map((c) => c.key);
    for (let n = 1; n <= held.length; n++) {
      await rp.waitForSelector(`${testid('rater-screen')}[data-busy="false"]`);
      await rp.waitForSelector(testid('item-context'));
      const house = houseOf((await rp.textContent(testid('prompt'))).trim());
      const texts = {};
      for (const side of ['a', 'b']) texts[side] = await rp.textContent(testid(`answer-${side}-text`));
      const scores = { a: factChecker(texts.a, house), b: factChecker(texts.b, house) };
      // A person is kinder to fluent text than the script: coherence from reading, not counting.
      for (const side of ['a', 'b']) scores[side].coherence_fluency = clip(texts[side].trim().split(/\s+/).length >= 12 ? 4 : 2);
      await rp.waitForFunction(() => document.activeElement?.closest('[data-slot]')?.getAttribute('data-slot') === '0');
      for (const side of ['a', 'b']) for (const key of criteria) await rp.keyboard.press(String(scores[side][key] ?? 3));
      const pref = verdict(scores.a, scores.b);
      await rp.keyboard.press(pref === 'tie' ? 't' : pref);
      if (n === 1) {
        await rp.focus(testid('edited'));
        await rp.keyboard.type(held.find((h) => h.input === house).response);
        await screenshot(rp, 'smollm2-5-rater');
        await rp.keyboard.press('Control+Enter');
      } else {
        await rp.keyboard.press('Enter');
      }
      await rp.waitForFunction(
        ([sel, want]) => document.querySelector(sel)?.textContent.trim() === want,
        [testid('save-status'), `Saved, ${n} of ${held.length}`],
      );
    }
    await rp.waitForSelector(testid('done'));
    await rater.close();

    await post(server.url, server.token, 'review_close', { id: session.id });
    const results = await post(server.url, server.token, 'review_results', { id: session.id });
    assert.equal(results.human.ratings, held.length);
    assert.equal(results.machine.ratings, 2 * held.length);
    assert.equal(results.machine.raters, 2);

    // The agreement the app shows is the one `whet review agreement` computes from the exported CSV.
    const csv = await post(server.url, server.token, 'review_export', { id: session.id, format: 'csv', kind: 'machine' });
    const csvPath = join(server.home, 'smollm2-machine-ratings.csv');
    writeFileSync(csvPath, csv);
    const cli = spawnSync(binary('whet', 'WHET_BIN'), ['review', 'agreement', csvPath, '--json'], { encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stderr);
    const outside = JSON.parse(cli.stdout);
    for (const c of results.machine.criteria) {
      const row = outside.find((o) => o.criterion === c.key);
      assert.ok(row, `whet review agreement has no ${c.key}: ${cli.stdout}`);
      for (const level of ['ordinal', 'nominal']) {
        const [app, cliAlpha] = [c.agreement[level], row[level]];
        assert.ok(app === cliAlpha || Math.abs(app - cliAlpha) < 1e-9, `${c.key} ${level}: the app says ${app}, the CSV gives ${cliAlpha}`);
      }
    }

    // The rater's listing becomes a new version of the training data, with its provenance.
    const mine = await post(server.url, server.token, 'review_export', { id: session.id, format: 'jsonl', kind: 'human' });
    const edits = mine
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.edited);
    assert.equal(edits.length, 1);
    const accepted = await post(server.url, server.token, 'review_accept', {
      session: session.id,
      ratings: edits.map((r) => r.rating_id),
      dataset: 'windsor-listings',
    });
    assert.equal(accepted.rows, 1);

    const figures = {
      model: 'SmolLM2-135M-Instruct Q4_1 (GGUF base as it is), LoRA',
      run: runId,
      steps: STEPS,
      data: 'tests/fixtures/windsor-listings.jsonl: 54 houses for training (10% held for checking), 6 held out for the review',
      evaluation: { id: evaluation.id, items: evaluation.items, sides: evaluation.sides },
      review: { session: session.id, human: results.human, machine: results.machine, most_disagreed: results.most_disagreed },
      agreement_from_csv: outside,
      accepted: { dataset: accepted.dataset.name, version: accepted.version.version, rows: accepted.rows },
    };
    writeFileSync(join(artifactsDir, 'smollm2-review.json'), JSON.stringify(figures, null, 2));
    const line = (g) =>
      g.criteria
        .map((c) => `${c.key} base ${c.baseline?.mean?.toFixed(2)} tuned ${c.candidate?.mean?.toFixed(2)} alpha(ord) ${c.agreement.ordinal?.toFixed(3) ?? 'n/a'}`)
        .join('; ');
    console.log(`review ${session.id}, people: ${line(results.human)}`);
    console.log(`review ${session.id}, scripts: ${line(results.machine)}`);
    console.log(`tuned win rate (people): ${JSON.stringify(results.human.preference)}; (scripts): ${JSON.stringify(results.machine.preference)}`);
    assert.deepEqual(errors, []);
  });
});
