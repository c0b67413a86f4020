// Starts the real `whet serve` on a free port and reports the address and the token it printed.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { binary, tempHome, uiDist } from './paths.mjs';

const STARTUP_TIMEOUT_MS = 30_000;

/** `env` adds variables for the server (a test hub's address as HF_ENDPOINT, say). */
export async function startServer({ env = {} } = {}) {
  const home = tempHome();
  const child = spawn(binary('whet', 'WHET_BIN'), ['serve', '--port', '0', '--ui', uiDist], {
    env: { ...process.env, ...env, WHETSTONE_HOME: home.path },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const started = (async () => {
    const first = (await lines.next()).value ?? '';
    const listening = /^listening on (http:\/\/\S+)$/.exec(first.trim());
    if (!listening) throw new Error(`unexpected first line from whet serve: ${JSON.stringify(first)}`);
    const second = (await lines.next()).value ?? '';
    const link = /^open (http:\/\/\S+\/#token=(\S+))$/.exec(second.trim());
    if (!link) throw new Error(`unexpected second line from whet serve: ${JSON.stringify(second)}`);
    return { url: listening[1].replace(/\/$/, ''), link: link[1], token: link[2] };
  })();
  const { url, link, token } = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`whet serve printed no address within ${STARTUP_TIMEOUT_MS} ms; stderr: ${stderr}`)),
      STARTUP_TIMEOUT_MS,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`whet serve exited with ${code} before listening; stderr: ${stderr}`));
    });
    started.then(
      (found) => {
        clearTimeout(timer);
        resolve(found);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
  child.removeAllListeners('exit');

  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    url,
    /** The link `whet serve` printed, which carries the session token. */
    link,
    token,
    /** A page of the UI, opened the way a user does: through the printed link. */
    page(route = '') {
      return `${url}/${route}#token=${token}`;
    },
    home: home.path,
    /** An API command as the page calls it; resolves to `{ status, body }`. */
    async call(command, args = {}) {
      const res = await fetch(`${url}/api/${command}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(args),
      });
      return { status: res.status, body: await res.json() };
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
    async close() {
      await this.stop();
      home.cleanup();
    },
  };
}

/**
 * Starts `whet serve --review` on a free loopback port over the same home folder as `home`: what
 * raters on other machines reach (the review page and their own queue, with their invite tokens).
 */
export async function startReviewServer(home) {
  const child = spawn(binary('whet', 'WHET_BIN'), ['serve', '--review', '--bind', '127.0.0.1:0', '--ui', uiDist], {
    env: { ...process.env, WHETSTONE_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`whet serve --review printed no address within ${STARTUP_TIMEOUT_MS} ms; stderr: ${stderr}`)),
      STARTUP_TIMEOUT_MS,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`whet serve --review exited with ${code} before listening; stderr: ${stderr}`));
    });
    lines.next().then(({ value }) => {
      clearTimeout(timer);
      const listening = /^listening on (http:\/\/\S+)$/.exec((value ?? '').trim());
      if (listening) resolve(listening[1].replace(/\/$/, ''));
      else reject(new Error(`unexpected first line from whet serve --review: ${JSON.stringify(value)}`));
    }, reject);
  });
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    url,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
