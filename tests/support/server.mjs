// Starts the real `whet serve` on a free port and reports the address and the token it printed;
// with `review`, the raters' server (`whet serve --review`) over an existing home folder instead.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { binary, tempHome, uiDist } from './paths.mjs';

const STARTUP_TIMEOUT_MS = 30_000;

/**
 * The app's server, over a fresh home folder; `env` adds variables for it (a test hub's address as
 * HF_ENDPOINT, say). `startServer({ review: { home } })` starts the raters' server over `home` (the
 * folder of an app server that prepared a review session), on a free loopback port; that home is
 * left in place when it stops.
 */
export async function startServer({ review = null, env = {} } = {}) {
  const home = review ? { path: review.home, cleanup: () => {} } : tempHome();
  const args = review
    ? ['serve', '--review', '--bind', '127.0.0.1:0', '--ui', uiDist]
    : ['serve', '--port', '0', '--ui', uiDist];
  const child = spawn(binary('whet', 'WHET_BIN'), args, {
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
    const url = listening[1].replace(/\/$/, '');
    const second = (await lines.next()).value ?? '';
    if (review) {
      if (!/^review page: http:\/\/\S+\/review#token=/.test(second.trim())) {
        throw new Error(`unexpected second line from whet serve --review: ${JSON.stringify(second)}`);
      }
      return { url, link: null, token: null };
    }
    const link = /^open (http:\/\/\S+\/#token=(\S+))$/.exec(second.trim());
    if (!link) throw new Error(`unexpected second line from whet serve: ${JSON.stringify(second)}`);
    return { url, link: link[1], token: link[2] };
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
    /** The link `whet serve` printed, which carries the session token (none in review mode). */
    link,
    token,
    /** A page of the UI, opened the way a user does: through the printed link. */
    page(route = '') {
      return `${url}/${route}#token=${token}`;
    },
    /** The raters' page as an invited rater opens it: the link the organiser sends them. */
    raterLink(invite) {
      return `${url}/review#token=${invite}`;
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
    pid: child.pid,
    /** What the server wrote to its error output so far. */
    stderr: () => stderr,
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
