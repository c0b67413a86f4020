// Just enough W3C WebDriver over HTTP to drive the app through tauri-driver.

const ELEMENT_KEY = 'element-6066-11e4-a52e-4f735466cecf';

export class WebDriver {
  constructor(base) {
    this.base = base;
    this.session = null;
  }

  async request(method, path, body) {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      throw new Error(`${method} ${path}: HTTP ${res.status}, not JSON: ${text.slice(0, 300)}`);
    }
    if (!res.ok) {
      const v = json.value ?? {};
      throw new Error(`${method} ${path}: HTTP ${res.status} ${v.error ?? ''}: ${v.message ?? text.slice(0, 300)}`);
    }
    return json.value;
  }

  async newSession(application, args = []) {
    const value = await this.request('POST', '/session', {
      capabilities: { alwaysMatch: { 'tauri:options': { application, args } } },
    });
    this.session = value.sessionId;
    return value;
  }

  cmd(method, path, body) {
    return this.request(method, `/session/${this.session}${path}`, body);
  }

  async find(css) {
    const value = await this.cmd('POST', '/element', { using: 'css selector', value: css });
    const id = value?.[ELEMENT_KEY];
    if (typeof id !== 'string') throw new Error(`find ${css}: no element reference in ${JSON.stringify(value)}`);
    return id;
  }

  /** Polls until an element matching `css` exists, for at most `timeoutMs`. */
  async waitFor(css, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    let last;
    while (Date.now() < deadline) {
      try {
        return await this.find(css);
      } catch (e) {
        last = e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw new Error(`no element matched ${css} within ${timeoutMs} ms (${last?.message})`);
  }

  text(element) {
    return this.cmd('GET', `/element/${element}/text`);
  }

  /** Whether a user would see the element: WebDriver's own visibility rules, not just presence. */
  displayed(element) {
    return this.cmd('GET', `/element/${element}/displayed`);
  }

  /** The element's box in CSS pixels: `{ x, y, width, height }`. */
  rect(element) {
    return this.cmd('GET', `/element/${element}/rect`);
  }

  click(element) {
    return this.cmd('POST', `/element/${element}/click`, {});
  }

  /** Replaces a text field's value by typing `text` into it, as a user would. */
  async type(element, text) {
    await this.cmd('POST', `/element/${element}/clear`, {});
    await this.cmd('POST', `/element/${element}/value`, { text });
  }

  execute(script, args = []) {
    return this.cmd('POST', '/execute/sync', { script, args });
  }

  /** Runs `script` in the page; it ends by calling its last argument with the result. */
  executeAsync(script, args = []) {
    return this.cmd('POST', '/execute/async', { script, args });
  }

  /**
   * Resolves once the page has painted what is in the DOM now: the first animation frame runs
   * before the next paint, the second after it.
   */
  afterPaint() {
    return this.executeAsync(
      'const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));',
    );
  }

  /** A PNG of the window as painted, never of a DOM change the engine has not drawn yet. */
  async screenshot() {
    await this.afterPaint();
    return Buffer.from(await this.cmd('GET', '/screenshot'), 'base64');
  }

  async quit() {
    if (this.session) {
      await this.cmd('DELETE', '');
      this.session = null;
    }
  }
}
