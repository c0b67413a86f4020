// Headless Chromium from the system (no browser downloads), driven by playwright-core.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { artifactsDir, repoRoot } from './paths.mjs';

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Serves every page of `page` under the desktop app's content security policy, read from
 * tauri.conf.json, so that an inline script or style the window would refuse fails here too.
 * Only connect-src differs: the window calls the backend over IPC, a browser over HTTP to the
 * page's own origin.
 */
export async function enforceAppCsp(page) {
  const conf = JSON.parse(readFileSync(join(repoRoot, 'tauri.conf.json'), 'utf8'));
  const csp = conf.app.security.csp
    .split(';')
    .map((d) => d.trim())
    .map((d) => (d.startsWith('connect-src') ? "connect-src 'self'" : d))
    .join('; ');
  await page.route('**/*', async (route) => {
    if (route.request().resourceType() !== 'document') return route.continue();
    const response = await route.fetch();
    await route.fulfill({ response, headers: { ...response.headers(), 'content-security-policy': csp } });
  });
  // Violations are reported to the page; keep them where the test can read them.
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline code'}`);
    });
  });
  return csp;
}

/**
 * Opens the app that `server` serves in a new page of `browser`, the way a user does (through the
 * printed link), under the window's content policy; script errors and console errors are
 * collected in `errors` for the test to check.
 */
export async function openApp(browser, server, { viewport = { width: 1280, height: 900 }, timeout = 20_000 } = {}) {
  const page = await browser.newPage({ viewport });
  page.setDefaultTimeout(timeout);
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  await enforceAppCsp(page);
  await page.goto(server.page());
  return { page, errors };
}

/**
 * Saves a screenshot once the page has painted what is on it (two animation frames): the whole
 * page, or only the element `selector` names.
 */
export async function screenshot(page, name, selector) {
  await page.evaluate(
    () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve()))),
  );
  mkdirSync(artifactsDir, { recursive: true });
  const path = join(artifactsDir, `${name}.png`);
  if (selector) await page.locator(selector).screenshot({ path });
  else await page.screenshot({ path, fullPage: true });
}
