// Starts the real `whet serve` on a free port and reports the address it printed.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { binary, tempHome, uiDist } from './paths.mjs';

const STARTUP_TIMEOUT_MS = 30_000;

export async function startServer() {
  const home = tempHome();
  const child = spawn(binary('whet', 'WHET_BIN'), ['serve', '--port', '0', '--ui', uiDist], {
    env: { ...process.env, WHETSTONE_HOME: home.path },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`whet serve printed no address within ${STARTUP_TIMEOUT_MS} ms; stderr: ${stderr}`)),
      STARTUP_TIMEOUT_MS,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`whet serve exited with ${code} before listening; stderr: ${stderr}`));
    });
    lines.once('line', (line) => {
      clearTimeout(timer);
      const match = /^listening on (http:\/\/\S+)$/.exec(line.trim());
      if (match) resolve(match[1].replace(/\/$/, ''));
      else reject(new Error(`unexpected first line from whet serve: ${JSON.stringify(line)}`));
    });
  });
  child.removeAllListeners('exit');

  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    url,
    home: home.path,
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
