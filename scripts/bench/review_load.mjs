#!/usr/bin/env node
// Load benchmark of `whet serve --review`: many raters rating at once against one server.
//
// Usage: node scripts/bench/review_load.mjs [SECONDS]     (default 60)
//
// Environment:
//   RATERS     simulated raters, each with their own invite token (default 50)
//   ITEMS      listings in the evaluation; every rater's queue holds all of them (default 20)
//   MAX_RATINGS  stop after this many ratings in all, whatever the time (default 200000)
//   WHET_BIN   the whet binary (default target/debug/whet of this checkout; build it first)
//   CARGO_TARGET_DIR  where cargo builds, if not target/
//
// What it does: prepares a review session through the app's server on a fresh home folder (a tiny
// random model trained for two steps, an evaluation of ITEMS prompts, a session where every item goes
// to every rater, RATERS invitations), then starts `whet serve --review --bind 127.0.0.1:0` on that
// home. Each simulated rater, as the page does, reads an item of their queue (`review_next`) and rates
// it (`review_submit`), going round their queue again and again (a later rating replaces the earlier
// one, which is kept as history), with no pause, until SECONDS have passed or MAX_RATINGS were
// given. Only loopback addresses are used, and the run stops by itself.
//
// It prints ratings per second and the 50th and 99th percentile latency of each kind of request,
// then reads the store (with the sqlite3 command-line program) to check that it holds exactly the
// acknowledged ratings: every acknowledged rating id once, nothing else, each as it was sent, and the
// current rating of each (rater, item) the last one acknowledged. The target on a 2-core machine is a
// p99 under 100 ms. Exit status: 0 when the store checks out, 1 when it does not, 2 on bad usage.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startServer } from '../../tests/support/server.mjs';
import { writeTinyModel } from '../../tests/support/tiny-model.mjs';

function positive(name, raw, fallback) {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`review_load: ${name} must be a whole number of at least 1, got '${raw}'`);
    process.exit(2);
  }
  return n;
}

const SECONDS = positive('SECONDS', process.argv[2], 60);
const RATERS = positive('RATERS', process.env.RATERS, 50);
const ITEMS = positive('ITEMS', process.env.ITEMS, 20);
const MAX_RATINGS = positive('MAX_RATINGS', process.env.MAX_RATINGS, 200_000);

try {
  execFileSync('sqlite3', ['-version'], { stdio: 'ignore' });
} catch {
  console.error('review_load: the sqlite3 program is needed to read the store afterwards (apt-get install sqlite3)');
  process.exit(2);
}

async function api(server, cmd, args = {}) {
  const res = await fetch(`${server.url}/api/${cmd}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` },
    body: JSON.stringify(args),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`${cmd} answered ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

/** A session on a fresh home folder: its id, criteria and one invite token per rater. */
async function prepare() {
  const app = await startServer();
  try {
    const model = writeTinyModel(join(app.home, 'tiny-model'));
    const data = join(app.home, 'listings.jsonl');
    const rows = [];
    for (let i = 0; i < 6; i++) rows.push(JSON.stringify({ prompt: `Describe flat ${i}.`, response: `A bright flat with ${i + 1} rooms.` }));
    writeFileSync(data, rows.join('\n') + '\n');
    const started = await api(app, 'start_run', { model, data, settings: { steps: 2, batch: 1, 'max-len': 64 } });
    let run;
    const until = Date.now() + 300_000;
    do {
      await new Promise((r) => setTimeout(r, 300));
      run = await api(app, 'get_run', { id: started.id });
      if (Date.now() > until) throw new Error(`the run is still ${run.status} after 300 s`);
    } while (['queued', 'running'].includes(run.status));
    if (run.status !== 'completed') throw new Error(`the run ended ${run.status}: ${run.error}`);
    const prompts = Array.from({ length: ITEMS }, (_, i) => ({
      prompt: `Write a listing for property ${i + 1}.`,
      input: { bedrooms: 1 + (i % 4), living_area_m2: 40 + 7 * i, balcony: i % 2 === 0 },
    }));
    const evaluation = await api(app, 'eval_run', { run: run.id, rows: prompts, max_new_tokens: 8 });
    const session = await api(app, 'review_create', { evaluation: evaluation.id, raters_per_item: RATERS, seed: 1 });
    const tokens = [];
    for (let r = 0; r < RATERS; r++) {
      tokens.push((await api(app, 'review_invite', { session: session.id, name: `Rater ${r + 1}` })).token);
    }
    // The app's server is done; the raters' server alone answers from here on.
    await app.stop();
    return { home: app.home, session, tokens, cleanup: () => app.close() };
  } catch (e) {
    await app.close();
    throw e;
  }
}

/** JSON with every object's keys in order, to compare what was sent with what was stored. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** CPU seconds a process has used (user and system), from /proc; NaN where there is no /proc. */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function describe(name, times) {
  const sorted = [...times].sort((a, b) => a - b);
  const f = (x) => `${x.toFixed(1)} ms`;
  return `${name}: ${times.length} requests, p50 ${f(percentile(sorted, 50))}, p99 ${f(percentile(sorted, 99))}, max ${f(sorted.at(-1) ?? NaN)}`;
}

const prepared = await prepare();
const { home, session, tokens } = prepared;
const review = await startServer({ review: { home } });
const criteria = session.criteria.map((c) => c.key);
const latency = { next: [], submit: [] };
const acknowledged = [];
const refused = [];
let given = 0;

// One kept-alive connection per rater, as a browser keeps; plain node:http costs the simulated raters less
// of the machine's CPU than fetch, leaving more of it to the server being measured.
const agent = new Agent({ keepAlive: true, maxSockets: RATERS });

function post(path, token, payload) {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(JSON.stringify(payload));
    const req = request(
      `${review.url}${path}`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: `Bearer ${token}` },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
          } catch (e) {
            reject(e);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function call(token, cmd, args) {
  const t0 = performance.now();
  const answer = await post(`/api/${cmd}`, token, args);
  latency[cmd === 'review_next' ? 'next' : 'submit'].push(performance.now() - t0);
  return answer;
}

/** One rater: their queue from the first read, then read-and-rate round it until time is up. */
async function rater(r, token, deadline) {
  const first = await call(token, 'review_next', {});
  if (first.status !== 200) throw new Error(`rater ${r + 1} cannot read their queue: ${JSON.stringify(first.body)}`);
  const queue = first.body.queue.map((q) => q.item);
  for (let round = 0; performance.now() < deadline; round++) {
    const item = queue[round % queue.length];
    const read = await call(token, 'review_next', { item });
    if (read.status !== 200) {
      refused.push(`review_next ${read.status} ${read.body.code}`);
      continue;
    }
    if (given >= MAX_RATINGS) break;
    given++;
    const score = (k) => 1 + ((r + round + k) % 5);
    const rating = {
      a: { scores: Object.fromEntries(criteria.map((c, k) => [c, score(k)])), flags: round % 7 === 0 ? ['too_generic'] : [] },
      b: { scores: Object.fromEntries(criteria.map((c, k) => [c, score(k + 2)])), flags: [] },
      preference: ['a', 'b', 'tie'][(r + round) % 3],
      comment: `rater ${r + 1}, round ${round}`,
    };
    const sent = await call(token, 'review_submit', { item, ...rating });
    if (sent.status === 200) acknowledged.push({ id: sent.body.rating_id, token, item, rating });
    else refused.push(`review_submit ${sent.status} ${sent.body.code}`);
  }
}

let failed = false;
try {
  console.log(`${RATERS} raters, ${ITEMS} items each, ${SECONDS} s, against ${review.url} (whet serve --review)`);
  // The simulated raters run on this machine too; other work on it shows in the figures.
  const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
  console.log(`machine: ${cpus().length} cores, load average before: ${load()}`);
  const serverCpu = cpuSeconds(review.pid);
  const clientCpu = process.cpuUsage();
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  await Promise.all(tokens.map((t, r) => rater(r, t, deadline)));
  const elapsed = (performance.now() - start) / 1000;
  console.log(`load average after: ${load()}`);
  const clientUsed = process.cpuUsage(clientCpu);
  console.log(
    `CPU used: server ${(cpuSeconds(review.pid) - serverCpu).toFixed(1)} s, simulated raters ` +
      `${((clientUsed.user + clientUsed.system) / 1e6).toFixed(1)} s, of ${(elapsed * cpus().length).toFixed(0)} s on ${cpus().length} cores`,
  );
  console.log(`ratings acknowledged: ${acknowledged.length} in ${elapsed.toFixed(1)} s = ${(acknowledged.length / elapsed).toFixed(1)} ratings/s`);
  console.log(describe('review_submit', latency.submit));
  console.log(describe('review_next', latency.next));
  console.log(describe('all requests', [...latency.submit, ...latency.next]));
  if (refused.length > 0) {
    failed = true;
    console.log(`refused: ${refused.length} (first: ${refused[0]})`);
  }
  const p99 = percentile([...latency.submit, ...latency.next].sort((a, b) => a - b), 99);
  console.log(`target p99 < 100 ms: ${p99 < 100 ? 'met' : 'MISSED'} (${p99.toFixed(1)} ms)`);
  await review.stop();

  // The store, read directly: every acknowledged rating once, nothing more, each as sent.
  const sql = `SELECT g.id AS id, g.item AS item, g.rating AS rating, g.current AS current, r.token_sha256 AS token
               FROM review_ratings g JOIN review_raters r ON r.id = g.rater_id WHERE r.session_id = ${Number(session.id)}`;
  const out = execFileSync('sqlite3', ['-readonly', '-json', join(home, 'whetstone.db'), sql], { maxBuffer: 1 << 30 }).toString();
  const stored = out.trim() === '' ? [] : JSON.parse(out);
  const { createHash } = await import('node:crypto');
  const hash = (t) => createHash('sha256').update(t).digest('hex');
  const byId = new Map(stored.map((row) => [row.id, row]));
  const ackIds = new Set(acknowledged.map((a) => a.id));
  const lost = acknowledged.filter((a) => !byId.has(a.id));
  const doubled = acknowledged.length - ackIds.size;
  const unexpected = stored.filter((row) => !ackIds.has(row.id));
  const altered = acknowledged.filter((a) => {
    const row = byId.get(a.id);
    if (!row) return false;
    const saved = JSON.parse(row.rating);
    return row.item !== a.item || row.token !== hash(a.token) || canonical(saved) !== canonical({ ...a.rating, edited: null });
  });
  const last = new Map();
  for (const a of acknowledged) {
    const key = `${a.token}:${a.item}`;
    if (!last.has(key) || last.get(key).id < a.id) last.set(key, a);
  }
  const current = new Set(stored.filter((row) => row.current === 1).map((row) => row.id));
  const notLast = [...last.values()].filter((a) => !current.has(a.id)).length + (current.size - last.size);
  console.log(
    `store: ${stored.length} ratings for ${acknowledged.length} acknowledged: ${lost.length} lost, ${doubled} acknowledged twice, ` +
      `${unexpected.length} not acknowledged, ${altered.length} not as sent; ${current.size} current, ` +
      `${notLast} of them not the last acknowledged`,
  );
  const ok = lost.length === 0 && doubled === 0 && unexpected.length === 0 && altered.length === 0 && notLast === 0 && stored.length === acknowledged.length;
  console.log(ok ? 'store check: exactly the acknowledged ratings, none lost or doubled' : 'store check: FAILED');
  failed ||= !ok;
} finally {
  agent.destroy();
  await review.close();
  await prepared.cleanup();
}
process.exit(failed ? 1 : 0);
