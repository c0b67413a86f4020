// Starts the loopback test hub (crates/whetstone-hub/examples/test_hub.rs) serving folders as hub
// repos, optionally throttled so a download lasts long enough to watch and cancel.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { binary } from './paths.mjs';

const STARTUP_TIMEOUT_MS = 15_000;

/** `repos` maps repo ids to folders; `rate` is bytes per second for every file body. */
export async function startHub(repos, { rate } = {}) {
  const args = Object.entries(repos).flatMap(([repo, dir]) => ['--repo', repo, '--dir', dir]);
  if (rate !== undefined) args.push('--rate', String(Math.max(1, Math.round(rate))));
  const child = spawn(binary('examples/test_hub', 'WHET_TEST_HUB'), args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the test hub printed no address; stderr: ${stderr}`)), STARTUP_TIMEOUT_MS);
    child.once('exit', (code) => reject(new Error(`the test hub exited with ${code}; stderr: ${stderr}`)));
    lines.next().then(({ value }) => {
      clearTimeout(timer);
      const m = /^listening on (http:\/\/\S+)$/.exec((value ?? '').trim());
      if (m) resolve(m[1]);
      else reject(new Error(`unexpected first line from the test hub: ${JSON.stringify(value)}`));
    }, reject);
  });
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    url,
    async close() {
      // The hub ends when its standard input closes.
      child.stdin.end();
      await exited;
    },
  };
}
