// Routing by URL hash (#/home, #/models, ...) so it works the same from a file-less
// custom protocol in the app and from `whet serve` in a browser.

import { views } from './views.js';
import { ApiError, toApiError } from './transport.js';
import { h } from './dom.js';

const main = document.getElementById('main') as HTMLElement;
const banner = document.getElementById('error-banner') as HTMLElement;
let current = 0;

function routeName(): string {
  const name = location.hash.replace(/^#\/?/, '');
  return name in views ? name : 'home';
}

function showError(error: ApiError, retry: () => void): void {
  banner.replaceChildren(
    h('strong', {}, 'Something went wrong. '),
    h('span', { 'data-testid': 'error-message' }, error.message),
    ' ',
    h('code', { 'data-testid': 'error-code' }, error.code),
    ' ',
    h('button', { type: 'button', 'data-testid': 'error-retry' }, 'Try again'),
  );
  banner.querySelector('button')?.addEventListener('click', retry);
  banner.hidden = false;
}

function clearError(): void {
  banner.hidden = true;
  banner.replaceChildren();
}

async function show(): Promise<void> {
  const name = routeName();
  const view = views[name];
  const ticket = ++current;
  document.title = `${view.title} · Whetstone`;
  for (const link of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    link.setAttribute('aria-current', link.dataset.view === name ? 'page' : 'false');
  }
  main.setAttribute('aria-busy', 'true');
  main.replaceChildren(h('p', { class: 'loading', 'data-testid': 'loading' }, 'Loading…'));
  try {
    const content = await view.render();
    if (ticket !== current) return; // the user moved on while this was loading
    clearError();
    main.replaceChildren(content);
  } catch (raw) {
    if (ticket !== current) return;
    const error = toApiError(raw, 'ui_error');
    showError(error, () => void show());
    main.replaceChildren(
      h('p', { class: 'empty', 'data-testid': 'view-failed' }, `Could not load ${view.title}. See the message above.`),
    );
  } finally {
    if (ticket === current) main.setAttribute('aria-busy', 'false');
  }
}

window.addEventListener('hashchange', () => void show());
window.addEventListener('unhandledrejection', (event) => {
  showError(toApiError(event.reason, 'ui_error'), () => void show());
});
void show();
