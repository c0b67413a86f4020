// The raters' page of `whet serve --review` in headless Chromium. A review session is prepared
// through the app's server (a tiny model trained for a few steps, an evaluation of property
// listings, a session and two invited raters); then a review-mode server over the same home folder
// serves two raters who rate at the same time with the keyboard alone, each in their own queue.
// What the organiser's results say afterwards is checked against what the raters typed, the
// agreement (Krippendorff's alpha) recomputed here from those ratings; and every refused request a
// page at the review address can make leaves the store as it was.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../support/server.mjs';
import { launchBrowser, screenshot } from '../support/browser.mjs';
import { uiDist } from '../support/paths.mjs';
import { writeTinyModel } from '../support/tiny-model.mjs';

const TIMEOUT = 20_000;

function testid(id) {
  return `[data-testid="${id}"]`;
}

/** A call to the app's server with its session token. */
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

/** A rater's call to the review server, as the page makes it. */
async function asRater(review, token, cmd, args = {}) {
  const res = await fetch(`${review.url}/api/${cmd}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(args),
  });
  const body = await res.json();
  assert.equal(res.status, 200, `${cmd}: ${JSON.stringify(body)}`);
  return body;
}

const SYSTEM = 'You write property listings for an estate agency. Use only the facts given; never invent features.';
const LISTINGS = [
  {
    prompt: 'Write a short listing for this flat.',
    input: { type: 'Flat', bedrooms: 2, living_area_m2: 68, floor: 3, balcony: true, district: 'Old Town', asking_price_eur: 245000 },
  },
  {
    prompt: 'Write a short listing for this house, for families.',
    input: { type: 'Detached house', bedrooms: 4, living_area_m2: 142, garden_m2: 400, garage: false, district: 'Riverside' },
  },
  {
    prompt: 'Write two sentences about this studio for students.',
    input: { type: 'Studio', living_area_m2: 24, furnished: true, rent_eur_month: 610, near: ['University', 'Tram 4'] },
  },
  {
    prompt: 'Write a listing for this office space.',
    input: { type: 'Office', rooms: 5, floor_area_m2: 120, parking_spaces: 2, lift: true, district: 'Harbour' },
  },
];

/** Training rows for the few steps the tiny model takes. */
function writeTrainingData(home) {
  const rows = [
    ['Describe a two-bedroom flat with a balcony.', 'A bright two-bedroom flat with a sunny balcony.'],
    ['Describe a house with a garden.', 'A family house with a large, quiet garden.'],
    ['Describe a furnished studio.', 'A furnished studio close to the university.'],
    ['Describe an office with parking.', 'An office floor with two parking spaces.'],
    ['Describe a flat near the park.', 'A calm flat a short walk from the park.'],
    ['Describe a loft.', 'An open loft with high ceilings.'],
  ].map(([prompt, response]) => JSON.stringify({ prompt, response }));
  const data = join(home, 'listings.jsonl');
  writeFileSync(data, rows.join('\n') + '\n');
  return data;
}

/** What each rater types: a score for each line, and a verdict, from the item and the letter seen. */
function plannedScore(rater, item, letter, c) {
  const offset = rater === 'ann' ? 0 : c % 2;
  return 1 + ((item * 3 + (letter === 'a' ? 0 : 2) + c + offset) % 5);
}
function plannedPreference(rater, item) {
  return ['a', 'b', 'tie'][(item + (rater === 'ann' ? 0 : 1)) % 3];
}

/**
 * Krippendorff's alpha from units (each the values different raters gave it), as in Krippendorff
 * (2011), "Computing Krippendorff's alpha-reliability": the coincidence matrix of pairable values,
 * nominal or ordinal distances; null where it is undefined.
 */
function krippendorff(units, level) {
  const pairable = units.filter((u) => u.length >= 2);
  if (pairable.length === 0) return null;
  const values = [...new Set(pairable.flat())].sort((x, y) => x - y);
  const at = new Map(values.map((v, i) => [v, i]));
  const o = values.map(() => values.map(() => 0));
  for (const u of pairable) {
    for (let i = 0; i < u.length; i++) {
      for (let j = 0; j < u.length; j++) {
        if (i !== j) o[at.get(u[i])][at.get(u[j])] += 1 / (u.length - 1);
      }
    }
  }
  const nc = o.map((row) => row.reduce((a, b) => a + b, 0));
  const n = nc.reduce((a, b) => a + b, 0);
  const delta = (c, k) => {
    if (level === 'nominal') return c === k ? 0 : 1;
    const [lo, hi] = c < k ? [c, k] : [k, c];
    let s = -(nc[lo] + nc[hi]) / 2;
    for (let g = lo; g <= hi; g++) s += nc[g];
    return s * s;
  };
  let observed = 0;
  let expected = 0;
  for (let c = 0; c < values.length; c++) {
    for (let k = 0; k < values.length; k++) {
      observed += o[c][k] * delta(c, k);
      expected += nc[c] * nc[k] * delta(c, k);
    }
  }
  if (expected === 0) return null;
  return 1 - ((n - 1) * observed) / expected;
}

function assertAlpha(actual, expected, what) {
  if (expected === null) {
    assert.equal(actual, null, what);
  } else {
    assert.ok(actual !== null && Math.abs(actual - expected) < 1e-9, `${what}: results say ${actual}, the ratings give ${expected}`);
  }
}

/** The item the page shows, once it has finished loading; '' on the "all done" page. */
async function shownItem(page) {
  await page.waitForSelector(`${testid('rater-screen')}[data-busy="false"]`);
  await page.waitForSelector(`${testid('item-context')}, ${testid('done')}`);
  const item = await page.getAttribute(testid('rater-screen'), 'data-item');
  return item === '' ? null : Number(item);
}

function focusedSlot(page) {
  return page.evaluate(() => document.activeElement?.closest('[data-slot]')?.getAttribute('data-slot') ?? null);
}

function focusedTestid(page) {
  return page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? null);
}

async function tabTo(page, id) {
  for (let i = 0; i < 30; i++) {
    if ((await focusedTestid(page)) === id) return;
    await page.keyboard.press('Tab');
  }
  assert.fail(`Tab never reached ${id}; the focus is on ${await focusedTestid(page)}`);
}

async function waitForStatus(page, text) {
  await page.waitForFunction(
    ([sel, want]) => document.querySelector(sel)?.textContent.trim() === want,
    [testid('save-status'), text],
    { timeout: TIMEOUT },
  );
}

describe('the raters page served by whet serve --review', () => {
  let app;
  let review;
  let browser;
  let session;
  let other;
  let criteria;
  const tokens = {};
  const raterIds = {};
  const contexts = [];
  const pageErrors = [];

  async function raterPage(token, viewport = { width: 1280, height: 900 }) {
    const context = await browser.newContext({ viewport });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      // A refused request is logged by the browser itself; those are the point of some checks.
      if (m.type() === 'error' && !/status of (401|403|404|413)/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
    });
    await page.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline code'}`);
      });
    });
    await page.goto(review.raterLink(token));
    return page;
  }

  before(async () => {
    app = await startServer();
    const model = writeTinyModel(join(app.home, 'tiny-model'));
    const data = writeTrainingData(app.home);
    const started = await api(app, 'start_run', { model, data, settings: { steps: 2, batch: 1, 'max-len': 64 } });
    const deadline = Date.now() + 240_000;
    let run;
    for (;;) {
      run = await api(app, 'get_run', { id: started.id });
      if (!['queued', 'running'].includes(run.status)) break;
      if (Date.now() > deadline) throw new Error(`run still ${run.status} after 240 s`);
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(run.status, 'completed', `the run ended ${run.status}: ${run.error}`);
    const evaluation = await api(app, 'eval_run', {
      run: run.id,
      rows: LISTINGS.map((l) => ({ ...l, system: SYSTEM })),
      max_new_tokens: 24,
    });
    session = await api(app, 'review_create', { evaluation: evaluation.id, name: 'Listings, spring', raters_per_item: 2, seed: 7 });
    criteria = session.criteria;
    // Ann takes three of the four listings; Bob all four, so one is his alone.
    for (const [name, extra] of [['ann', { max_items: 3 }], ['bob', {}]]) {
      const invitation = await api(app, 'review_invite', { session: session.id, name: name === 'ann' ? 'Ann Keller' : 'Bob Marsh', ...extra });
      tokens[name] = invitation.token;
      raterIds[name] = invitation.rater.id;
    }
    // A second session whose links no longer work: Carol's was withdrawn, Dave's has run out.
    other = await api(app, 'review_create', { evaluation: evaluation.id, raters_per_item: 1 });
    const carol = await api(app, 'review_invite', { session: other.id, name: 'Carol' });
    await api(app, 'review_revoke', { rater: carol.rater.id });
    tokens.carol = carol.token;
    tokens.dave = (await api(app, 'review_invite', { session: other.id, name: 'Dave', expires_in_s: 0 })).token;

    review = await startServer({ review: { home: app.home } });
    browser = await launchBrowser();
  });

  after(async () => {
    for (const c of contexts) await c.close();
    await browser?.close();
    await review?.close();
    await app?.close();
  });

  /** The ratings each rater entered, in the A/B terms they saw, by item. */
  const entered = { ann: new Map(), bob: new Map() };

  async function rateEverything(page, rater) {
    const queue = (await asRater(review, tokens[rater], 'review_next')).queue.map((q) => q.item);
    assert.equal(await page.textContent(testid('rater-name')), rater === 'ann' ? 'Ann Keller' : 'Bob Marsh');
    const seen = [];
    for (let n = 1; n <= queue.length; n++) {
      const item = await shownItem(page);
      seen.push(item);
      assert.equal(await page.textContent(testid('item-position')), `Task ${n} of ${queue.length}`);
      // The page puts the keyboard on the first line to score.
      await page.waitForFunction(() => document.activeElement?.closest('[data-slot]')?.getAttribute('data-slot') === '0');
      const rating = { a: { scores: {}, flags: [] }, b: { scores: {}, flags: [] }, preference: plannedPreference(rater, item), comment: null, edited: null };
      let line = 0;
      for (const letter of ['a', 'b']) {
        for (const [c, criterion] of criteria.entries()) {
          const value = plannedScore(rater, item, letter, c);
          rating[letter].scores[criterion.key] = value;
          // Ann slips on the third line of her first task and goes back with the arrows below.
          const typed = rater === 'ann' && n === 1 && line === 2 ? (value % 5) + 1 : value;
          await page.keyboard.press(String(typed));
          line++;
        }
      }
      assert.equal(await focusedSlot(page), String(2 * criteria.length - 1), 'after the last digit the last line keeps the focus');
      if (rater === 'ann' && n === 1) {
        for (let i = 0; i < 2 * criteria.length - 3; i++) await page.keyboard.press('ArrowUp');
        assert.equal(await focusedSlot(page), '2');
        await page.keyboard.press(String(rating.a.scores[criteria[2].key]));
        assert.equal(await focusedSlot(page), '3', 'a score moves on to the next line');
        await page.keyboard.press('ArrowDown');
        assert.equal(await focusedSlot(page), '4');
      }
      await page.keyboard.press(rating.preference === 'tie' ? 't' : rating.preference);
      assert.ok(await page.isChecked(testid(`pref-${rating.preference}`)));
      // Saved as it goes, before the rater says they are done with the task.
      await waitForStatus(page, `Saved, ${n} of ${queue.length}`);
      if (rater === 'ann' && n === 2) {
        // A flag and a comment, from the keyboard: Tab to them, Space ticks, Ctrl+Enter saves from the text.
        await tabTo(page, 'flag-b-inaccurate');
        await page.keyboard.press('Space');
        rating.b.flags.push('inaccurate');
        await tabTo(page, 'comment');
        rating.comment = 'B invents facts that are not in the details.';
        await page.keyboard.type(rating.comment);
        // The whole task from the top, as the rater met it.
        await page.evaluate(() => window.scrollTo(0, 0));
        await screenshot(page, 'review-rater');
        await page.keyboard.press('Control+Enter');
      } else if (rater === 'bob' && n === queue.length) {
        await tabTo(page, 'edited');
        rating.edited = 'Bright office floor in the Harbour district: five rooms, 120 m², lift and two parking spaces.';
        await page.keyboard.type(rating.edited);
        await page.keyboard.press('Control+Enter');
      } else {
        await page.keyboard.press('Enter');
      }
      entered[rater].set(item, rating);
    }
    assert.equal(await shownItem(page), null, 'after the last task the page says all are rated');
    await waitForStatus(page, `Saved, ${queue.length} of ${queue.length}`);
    assert.match(await page.textContent(testid('done')), new RegExp(`All ${queue.length} tasks are rated`));
    assert.deepEqual(seen, queue, `${rater} went through their own queue in its order`);
    return queue;
  }

  test('two raters rate at the same time by keyboard alone, each in their own queue, saved as they go', async () => {
    const [annPage, bobPage] = [await raterPage(tokens.ann), await raterPage(tokens.bob)];
    for (const page of [annPage, bobPage]) {
      await shownItem(page);
      assert.ok(!page.url().includes('token'), `the token left the address bar: ${page.url()}`);
      await waitForStatus(page, page === annPage ? '0 of 3 rated' : '0 of 4 rated');
    }
    // The prompt and the listing's details sit above the two answers, in plain words.
    const prompt = await annPage.textContent(testid('prompt'));
    const listing = LISTINGS.find((l) => l.prompt === prompt);
    assert.ok(listing, `the page shows one of the prompts: ${prompt}`);
    // The listing's details as named facts, not as code.
    const shown = await annPage.$$eval(`${testid('input-facts')} dt`, (dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent]));
    const expected = Object.entries(listing.input).map(([k, v]) => {
      const name = k.replaceAll('_', ' ');
      const value = v === true ? 'Yes' : v === false ? 'No' : Array.isArray(v) ? v.join(', ') : typeof v === 'number' ? v.toLocaleString('en') : v;
      return [name.charAt(0).toUpperCase() + name.slice(1), value];
    });
    assert.deepEqual(shown.sort(), expected.sort());
    const [contextTop, answerTop] = await annPage.evaluate(() =>
      ['[data-testid="item-context"]', '[data-testid="answer-a"]'].map((s) => document.querySelector(s).getBoundingClientRect().top),
    );
    assert.ok(contextTop < answerTop, 'the prompt comes before the answers');
    assert.equal(await annPage.locator(testid('origin-a')).count(), 0, 'who wrote which stays hidden while the review is open');
    // Every control has a name a screen reader reads out.
    const unnamed = await annPage.evaluate(() =>
      [...document.querySelectorAll('input, textarea, button, fieldset')]
        .filter((el) => {
          if (el instanceof HTMLFieldSetElement) return !el.querySelector('legend')?.textContent.trim();
          if (el instanceof HTMLButtonElement) return !el.textContent.trim() && !el.getAttribute('aria-label');
          return ![...(el.labels ?? [])].some((l) => l.textContent.trim()) && !el.getAttribute('aria-label');
        })
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    assert.deepEqual(unnamed, []);

    const [annQueue, bobQueue] = await Promise.all([rateEverything(annPage, 'ann'), rateEverything(bobPage, 'bob')]);
    assert.equal(annQueue.length, 3);
    assert.equal(bobQueue.length, 4);
    assert.equal(bobQueue.filter((i) => !annQueue.includes(i)).length, 1, 'one listing is Bob’s alone');

    // Back to a finished task with the left arrow: what was saved is what is shown.
    await annPage.keyboard.press('ArrowLeft');
    const last = await shownItem(annPage);
    assert.equal(last, annQueue.at(-1));
    const saved = entered.ann.get(last);
    for (const [c, criterion] of criteria.entries()) {
      assert.ok(await annPage.isChecked(testid(`score-a-${criterion.key}-${saved.a.scores[criterion.key]}`)), `line ${c}`);
    }
    await annPage.keyboard.press('ArrowRight');
    assert.equal(await annPage.textContent(testid('notice')), 'This is your last task.');

    for (const [rater, page] of [['ann', annPage], ['bob', bobPage]]) {
      const violations = await page.evaluate(() => window.__cspViolations);
      assert.deepEqual(violations, [], `${rater}: the page keeps to the review server's content security policy`);
    }
    assert.deepEqual(pageErrors, []);

    // What the server stored is what each rater typed.
    for (const rater of ['ann', 'bob']) {
      for (const [item, rating] of entered[rater]) {
        const view = await asRater(review, tokens[rater], 'review_next', { item });
        assert.deepEqual(view.item.rating, rating, `${rater}, item ${item}`);
      }
    }
    const status = await api(app, 'review_status', { id: session.id });
    assert.deepEqual(
      status.raters.map((r) => [r.name, r.progress]),
      [['Ann Keller', '3 of 3'], ['Bob Marsh', '4 of 4']],
    );
  });

  test('on a phone the page is one column that fits the screen', async () => {
    const phone = await raterPage(tokens.bob, { width: 390, height: 844 });
    assert.equal(await shownItem(phone), null);
    await phone.keyboard.press('ArrowLeft');
    const item = await shownItem(phone);
    assert.ok(item !== null);
    const [a, b] = await phone.evaluate(() => ['a', 'b'].map((s) => document.querySelector(`[data-testid="answer-${s}"]`).getBoundingClientRect()));
    assert.ok(b.top >= a.bottom, 'answer B comes under answer A');
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.equal(overflow, 0, 'nothing sticks out sideways');
    await screenshot(phone, 'review-rater-phone');
  });

  test('a link that does not work says so in plain words', async () => {
    for (const [what, link, reason] of [
      ['no token', `${review.url}/review`, /invite token/],
      ['a wrong token', review.raterLink('f'.repeat(64)), /not known/],
      ['a withdrawn link', review.raterLink(tokens.carol), /revoked/],
      ['a link that ran out', review.raterLink(tokens.dave), /expired/],
    ]) {
      const context = await browser.newContext();
      contexts.push(context);
      const page = await context.newPage();
      await page.goto(link);
      await page.waitForSelector(`${testid('rater-error')}[data-code="unauthorized"]`);
      assert.match(await page.textContent(testid('rater-error')), /This link does not work/, what);
      assert.match(await page.textContent(testid('rater-error')), reason, what);
    }
  });

  test('refused requests from the review address get their status and write nothing', async () => {
    const snapshot = async () =>
      JSON.stringify(
        await Promise.all([
          api(app, 'review_status', { id: session.id }),
          api(app, 'review_status', { id: other.id }),
          api(app, 'review_export', { id: session.id, format: 'jsonl' }),
          api(app, 'review_export', { id: other.id, format: 'jsonl' }),
        ]),
      );
    const before = await snapshot();
    const annItems = [...entered.ann.keys()];
    const bobOnly = [...entered.bob.keys()].find((i) => !entered.ann.has(i));
    const good = (item) => ({ item, a: { scores: { relevance: 3 } }, b: { scores: { relevance: 4 } }, preference: 'b' });
    const manifest = JSON.parse(readFileSync(join(uiDist, '.vite', 'manifest.json'), 'utf8'));
    const appScript = manifest['index.html'].file;
    const cases = [
      ['missing token', 'POST', '/api/review_submit', null, good(annItems[0]), 401, 'unauthorized'],
      ['wrong token', 'POST', '/api/review_submit', 'f'.repeat(64), good(annItems[0]), 401, 'unauthorized'],
      ['revoked token', 'POST', '/api/review_submit', tokens.carol, good(1), 401, 'unauthorized'],
      ['expired token', 'POST', '/api/review_next', tokens.dave, {}, 401, 'unauthorized'],
      ['the app’s own token', 'POST', '/api/review_next', app.token, {}, 401, 'unauthorized'],
      ['reading another rater’s item', 'POST', '/api/review_next', tokens.ann, { item: bobOnly }, 403, 'forbidden_item'],
      ['writing another rater’s item', 'POST', '/api/review_submit', tokens.ann, good(bobOnly), 403, 'forbidden_item'],
      ['a score of 9', 'POST', '/api/review_submit', tokens.ann, { ...good(annItems[0]), a: { scores: { relevance: 9 } } }, 400, 'invalid_input'],
      ['a 10 MB comment', 'POST', '/api/review_submit', tokens.ann, { ...good(annItems[0]), comment: 'x'.repeat(10 * 1024 * 1024) }, 413, 'payload_too_large'],
      ['an organiser’s command', 'POST', '/api/review_close', tokens.ann, { id: session.id }, 404, 'not_found'],
      ['the results', 'POST', '/api/review_results', tokens.ann, { id: session.id }, 404, 'not_found'],
      ['the app’s commands', 'POST', '/api/list_runs', tokens.ann, {}, 404, 'not_found'],
      ['the app’s page', 'GET', '/', tokens.ann, null, 404, 'not_found'],
      ['the app’s script', 'GET', `/${appScript}`, null, null, 404, 'not_found'],
      ['the build manifest', 'GET', '/.vite/manifest.json', null, null, 404, 'not_found'],
      ['a run’s events', 'GET', '/api/events/run/1', tokens.ann, null, 404, 'not_found'],
    ];
    const page = await raterPage(tokens.ann);
    await shownItem(page);
    const answers = await page.evaluate(async (list) => {
      const out = [];
      for (const [what, method, path, token, body] of list) {
        const headers = { 'content-type': 'application/json' };
        if (token !== null) headers.authorization = `Bearer ${token}`;
        const res = await fetch(path, { method, headers, body: body === null ? undefined : JSON.stringify(body) });
        const text = await res.text();
        let code = null;
        try {
          code = JSON.parse(text).code;
        } catch {
          code = `not JSON: ${text.slice(0, 60)}`;
        }
        out.push([what, res.status, code]);
      }
      return out;
    }, cases);
    assert.deepEqual(
      answers,
      cases.map(([what, , , , , status, code]) => [what, status, code]),
    );
    assert.equal(await snapshot(), before, 'nothing was written');
  });

  test('once the organiser closes the review, each answer says who wrote it, and the results hold both raters’ ratings', async () => {
    await api(app, 'review_close', { id: session.id });
    const page = await raterPage(tokens.ann);
    await page.waitForSelector(testid('closed-note'));
    await page.keyboard.press('ArrowLeft');
    const item = await shownItem(page);
    const view = await asRater(review, tokens.ann, 'review_next', { item });
    const words = { base: 'the original model, before training', tuned: 'the trained model' };
    for (const side of ['a', 'b']) {
      assert.equal(await page.textContent(testid(`origin-${side}`)), `Written by ${words[view.item.origins[side]]}`);
    }
    assert.ok(await page.isDisabled(testid('submit')));

    // The agreement, computed here from what the raters typed, turned into the sides they rated.
    const units = {};
    const add = (criterion, unit, value) => {
      units[criterion] ??= {};
      (units[criterion][unit] ??= []).push(value);
    };
    for (const rater of ['ann', 'bob']) {
      for (const [item, rating] of entered[rater]) {
        const { origins } = (await asRater(review, tokens[rater], 'review_next', { item })).item;
        for (const letter of ['a', 'b']) {
          for (const [key, value] of Object.entries(rating[letter].scores)) add(key, `${item}:${origins[letter]}`, value);
        }
        const preferred = rating.preference === 'tie' ? 0.5 : origins[rating.preference] === session.candidate ? 1 : 0;
        add('preference', String(item), preferred);
      }
    }
    const results = await api(app, 'review_results', { id: session.id });
    assert.equal(results.human.raters, 2);
    assert.equal(results.human.ratings, 7);
    assert.equal(results.machine.ratings, 0);
    for (const c of results.human.criteria) {
      const u = Object.values(units[c.key]);
      assertAlpha(c.agreement.ordinal, krippendorff(u, 'ordinal'), `${c.key}, ordinal`);
      assertAlpha(c.agreement.nominal, krippendorff(u, 'nominal'), `${c.key}, nominal`);
      assert.notEqual(c.agreement.ordinal, null, `${c.key}: the planned ratings vary`);
    }
    const prefs = Object.values(units.preference);
    assertAlpha(results.human.preference.agreement.ordinal, krippendorff(prefs, 'ordinal'), 'preference, ordinal');
    assertAlpha(results.human.preference.agreement.nominal, krippendorff(prefs, 'nominal'), 'preference, nominal');
    const flagged = results.human.flags.find((f) => f.flag === 'inaccurate');
    assert.equal(flagged.baseline + flagged.candidate, 1, 'Ann’s one flag');
  });
});
