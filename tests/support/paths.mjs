// Where the things under test live. Override with env vars when running from elsewhere.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR ?? join(repoRoot, 'target');

export function binary(name, envVar) {
  const path = process.env[envVar] ?? join(targetDir, 'debug', name);
  if (!existsSync(path)) {
    throw new Error(`${name} not found at ${path}; build it first (cargo build) or set ${envVar}`);
  }
  return path;
}

export const uiDist = process.env.WHETSTONE_UI_DIST ?? join(repoRoot, 'ui', 'dist');
export const artifactsDir = join(repoRoot, 'tests', 'artifacts');

/** A fresh, empty WHETSTONE_HOME, removed by the returned cleanup function. */
export function tempHome() {
  const path = mkdtempSync(join(tmpdir(), 'whetstone-e2e-'));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}
