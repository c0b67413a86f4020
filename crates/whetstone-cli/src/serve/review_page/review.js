// The review page served by `whet serve --review`: one item at a time, scores by keyboard, every control
// labelled. It speaks the same JSON API an automated rater uses, with the invite token from the link.
const app = document.getElementById('app');
const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromLink) {
  sessionStorage.setItem('whetstone-review-token', fromLink);
  // The token leaves the address bar, so it is not shared by copying the URL or kept in history.
  history.replaceState(null, '', location.pathname);
}
const token = sessionStorage.getItem('whetstone-review-token');

async function api(command, args) {
  const response = await fetch(`/api/${command}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify(args),
  });
  const body = await response.json().catch(() => ({ code: 'bad_response', message: response.statusText }));
  if (!response.ok) throw body;
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

function showError(e) {
  app.replaceChildren(el('p', { class: 'error', role: 'alert', text: `${e.code ?? 'error'}: ${e.message ?? e}` }));
}

let rows = [];
let current = 0;

function focusRow(i) {
  rows.forEach((r, j) => r.classList.toggle('current', j === i));
  current = i;
  rows[i]?.querySelector('input')?.focus();
}

function render(view) {
  rows = [];
  const status = el('p', { role: 'status', class: 'saved', text: `${view.progress.text} rated` });
  const head = el('header', {}, el('h1', { text: view.session }), status);
  if (!view.item) {
    app.replaceChildren(head, el('p', { text: `All ${view.progress.total} items are rated. Thank you, ${view.rater}.` }));
    return;
  }
  const item = view.item;
  const existing = item.rating ?? { a: { scores: {}, flags: [] }, b: { scores: {}, flags: [] } };
  const form = el('form', { 'aria-label': `Item ${item.item}` });
  form.append(el('h2', { text: `Item ${item.item}` }), el('div', { class: 'prompt', text: item.prompt }));
  if (item.input) form.append(el('h3', { text: 'Input' }), el('pre', { class: 'input', text: JSON.stringify(item.input, null, 2) }));
  const answers = el('div', { class: 'answers' });
  for (const side of ['a', 'b']) {
    const origin = item.origins ? ` (${item.origins[side]})` : '';
    const box = el('section', { class: 'answer', 'aria-label': `Answer ${side.toUpperCase()}` },
      el('h3', { text: `Answer ${side.toUpperCase()}${origin}` }), el('div', { class: 'text', text: item[side] }));
    for (const c of view.criteria) {
      const row = el('fieldset', { class: 'criterion', title: c.description },
        el('legend', { text: `${c.label} (${side.toUpperCase()})` }));
      for (let s = 1; s <= 5; s++) {
        const id = `${side}-${c.key}-${s}`;
        const input = el('input', { type: 'radio', name: `${side}-${c.key}`, id, value: String(s) });
        if (existing[side].scores[c.key] === s) input.checked = true;
        row.append(input, el('label', { for: id, text: String(s) }));
      }
      row.addEventListener('focusin', () => focusRow(rows.indexOf(row)));
      rows.push(row);
      box.append(row);
    }
    const flags = el('fieldset', {}, el('legend', { text: `Flags for answer ${side.toUpperCase()}` }));
    for (const f of view.flags) {
      const id = `${side}-flag-${f}`;
      const input = el('input', { type: 'checkbox', id, name: `${side}-flag`, value: f });
      if (existing[side].flags.includes(f)) input.checked = true;
      flags.append(input, el('label', { for: id, text: f.replace('_', ' ') }));
    }
    box.append(flags);
    answers.append(box);
  }
  form.append(answers);
  const pref = el('fieldset', {}, el('legend', { text: 'Which answer is better overall? (keys A, B, T)' }));
  for (const [value, label] of [['a', 'A'], ['b', 'B'], ['tie', 'Tie']]) {
    const input = el('input', { type: 'radio', name: 'preference', id: `pref-${value}`, value });
    if (existing.preference === value) input.checked = true;
    pref.append(input, el('label', { for: `pref-${value}`, text: label }));
  }
  form.append(pref);
  const comment = el('textarea', { id: 'comment', maxlength: '10000' });
  comment.value = existing.comment ?? '';
  const edited = el('textarea', { id: 'edited', maxlength: '50000' });
  edited.value = existing.edited ?? '';
  form.append(el('label', { for: 'comment', text: 'Comment' }), comment,
    el('label', { for: 'edited', text: 'Ideal response (optional)' }), edited);
  const submit = el('button', { type: 'submit', text: 'Submit (Enter)' });
  form.append(el('p', {}, submit), el('p', { text: 'Keys: 1–5 score the highlighted criterion, ↑/↓ move between criteria, A/B/T choose, Enter submits.' }));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    save(view, item, form).catch(showError);
  });
  app.replaceChildren(head, form);
  focusRow(0);
}

async function save(view, item, form) {
  const picked = (side) => {
    const scores = {};
    for (const c of view.criteria) {
      const on = form.querySelector(`input[name="${side}-${c.key}"]:checked`);
      if (on) scores[c.key] = Number(on.value);
    }
    const flags = [...form.querySelectorAll(`input[name="${side}-flag"]:checked`)].map((i) => i.value);
    return { scores, flags };
  };
  const preference = form.querySelector('input[name="preference"]:checked')?.value;
  const result = await api('review_submit', {
    item: item.item, a: picked('a'), b: picked('b'), preference,
    comment: form.querySelector('#comment').value, edited: form.querySelector('#edited').value,
  });
  await load();
  const status = app.querySelector('[role="status"]');
  if (status) status.textContent = `Saved, ${result.progress.text}`;
}

async function load() {
  render(await api('review_next', {}));
}

document.addEventListener('keydown', (event) => {
  const typing = event.target instanceof HTMLTextAreaElement;
  if (typing || !rows.length) return;
  if (/^[1-5]$/.test(event.key)) {
    const input = rows[current].querySelectorAll('input')[Number(event.key) - 1];
    input.checked = true;
    focusRow(Math.min(current + 1, rows.length - 1));
    event.preventDefault();
  } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
    focusRow(Math.max(0, Math.min(rows.length - 1, current + (event.key === 'ArrowDown' ? 1 : -1))));
    event.preventDefault();
  } else if (['a', 'b', 't'].includes(event.key.toLowerCase())) {
    const value = { a: 'a', b: 'b', t: 'tie' }[event.key.toLowerCase()];
    document.getElementById(`pref-${value}`).checked = true;
  } else if (event.key === 'Enter') {
    app.querySelector('form')?.requestSubmit();
    event.preventDefault();
  }
});

if (!token) {
  showError({ code: 'unauthorized', message: 'open the invitation link you were given; it carries your token' });
} else {
  load().catch(showError);
}
