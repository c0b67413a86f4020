// The web UI in headless Chromium against the real `whet serve` with an empty WHETSTONE_HOME.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { usableCores } from '../support/os.mjs';
import { startServer } from '../support/server.mjs';
import { launchBrowser } from '../support/browser.mjs';

const TIMEOUT = 15_000;

async function api(server, cmd, args = {}) {
  const res = await fetch(`${server.url}/api/${cmd}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` },
    body: JSON.stringify(args),
  });
  return { status: res.status, body: await res.json() };
}

function testid(id) {
  return `[data-testid="${id}"]`;
}

describe('web UI served by whet serve', () => {
  let server;
  let browser;
  let page;
  const pageErrors = [];

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
    });
    await page.goto(server.page());
    await page.waitForSelector(testid('home'));
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('the token leaves the address bar and a reload in the same tab keeps working', async () => {
    assert.ok(!page.url().includes(server.token), `token still in ${page.url()}`);
    assert.equal(new URL(page.url()).hash, '');
    await page.reload();
    await page.waitForSelector(testid('home'));
    assert.equal(await page.isVisible(testid('error-banner')), false);
    assert.equal(Number(await page.textContent(testid('cpu-cores'))), usableCores());
  });

  test('home screen shows the core count the operating system reports', async () => {
    const cores = await page.textContent(testid('cpu-cores'));
    assert.equal(Number(cores), usableCores());
  });

  test('home screen shows the processor and memory the backend measured', async () => {
    const { status, body: hw } = await api(server, 'hardware');
    assert.equal(status, 200);
    assert.equal(await page.textContent(testid('cpu-model')), hw.cpu_model);
    const gib = (n) => `${(n / 1024 ** 3).toFixed(1)} GB`;
    assert.equal(await page.textContent(testid('ram-total')), gib(hw.ram_total_bytes));
    assert.match(await page.textContent(testid('ram-available')), /^\d+(\.\d)? (GB|MB)$/);
    if (hw.gpus.length === 0) {
      assert.match(await page.textContent(testid('no-gpu')), /No GPU detected/);
    } else {
      assert.equal(await page.locator(`${testid('gpu-list')} li`).count(), hw.gpus.length);
    }
  });

  test('home screen shows the bundled model exactly when the backend has one', async () => {
    const { body: model } = await api(server, 'default_model');
    if (model === null) {
      assert.match(await page.textContent(testid('no-default-model')), /not on this computer/);
    } else {
      assert.equal(await page.textContent(testid('default-model-name')), model.name);
      assert.match(await page.textContent(testid('default-model-params')), /parameters$/);
      assert.equal(await page.textContent(testid('default-model-license')), model.license ?? 'not stated in the file');
    }
  });

  test('lists on the home screen match the backend', async () => {
    for (const [cmd, name] of [
      ['list_models', 'models'],
      ['list_datasets', 'datasets'],
      ['list_runs', 'runs'],
    ]) {
      const { status, body: rows } = await api(server, cmd);
      assert.equal(status, 200, `${cmd} answered ${status}`);
      const scope = testid(`home-${name}`);
      if (rows.length === 0) {
        assert.ok(await page.isVisible(`${scope} ${testid(`${name}-empty`)}`), `${name}: empty state missing`);
      } else {
        assert.equal(await page.locator(`${scope} ${testid(`${name}-table`)} tbody tr`).count(), rows.length);
      }
    }
  });

  test('navigation reaches every list view and comes back home', async () => {
    for (const name of ['models', 'datasets', 'runs']) {
      await page.click(testid(`nav-${name}`));
      await page.waitForSelector(testid(`${name}-view`));
      assert.equal(new URL(page.url()).hash, `#/${name}`);
      assert.equal(await page.getAttribute(testid(`nav-${name}`), 'aria-current'), 'page');
      assert.equal(await page.isVisible(testid('error-banner')), false);
    }
    await page.click(testid('nav-home'));
    await page.waitForSelector(testid('home'));
    assert.equal(Number(await page.textContent(testid('cpu-cores'))), usableCores());
  });

  test('the pages loaded and navigated without script, policy or missing-file errors', () => {
    assert.deepEqual(pageErrors, []);
  });

  test('an unknown command comes back from the server as a code and a message', async () => {
    const error = await page.evaluate(async () => {
      const { call } = await import('/transport.js');
      try {
        await call('no_such_command');
        return null;
      } catch (e) {
        return { name: e.name, code: e.code, message: e.message };
      }
    });
    assert.ok(error, 'calling an unknown command should fail');
    assert.equal(error.name, 'ApiError');
    assert.equal(error.code, 'unknown_command');
    assert.match(error.message, /no_such_command/);
  });
});

describe('web UI when the backend goes away', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('a failed call shows a visible error banner with a code and a message, not a blank page', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    await page.goto(server.page());
    await page.waitForSelector(testid('home'));
    assert.equal(await page.isVisible(testid('error-banner')), false);

    await server.stop();
    await page.click(testid('nav-datasets'));
    await page.waitForSelector(`${testid('error-banner')}:visible`);
    assert.equal(await page.textContent(testid('error-code')), 'unreachable');
    assert.match(await page.textContent(testid('error-message')), /Could not reach the Whetstone server/);
    assert.ok(await page.isVisible(testid('view-failed')));
    assert.ok(await page.isVisible(testid('nav-home')), 'navigation stays usable');
  });
});

describe('web UI opened without the link whet serve printed', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('a page without the token says to open the printed link', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    await page.goto(`${server.url}/`);
    await page.waitForSelector(`${testid('error-banner')}:visible`);
    assert.equal(await page.textContent(testid('error-code')), 'unauthorized');
    assert.match(await page.textContent(testid('error-message')), /open the link that `whet serve` printed/);
    assert.ok(await page.isVisible(testid('view-failed')));
  });

  test('a page with a wrong token is refused the same way', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    await page.goto(`${server.url}/#token=${'0'.repeat(64)}`);
    await page.waitForSelector(`${testid('error-banner')}:visible`);
    assert.equal(await page.textContent(testid('error-code')), 'unauthorized');
  });
});
