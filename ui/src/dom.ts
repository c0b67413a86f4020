// A small element builder: text always goes in as text nodes, never as HTML.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | undefined>;

export function h(tag: string, attrs: Attrs = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined) el.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function table(headers: string[], rows: Child[][], testid: string): HTMLElement {
  return h(
    'table',
    { 'data-testid': testid },
    h('thead', {}, h('tr', {}, ...headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, ...rows.map((cells) => h('tr', {}, ...cells.map((c) => h('td', {}, c))))),
  );
}

export function facts(items: [string, Child, string?][]): HTMLElement {
  const list = h('dl', { class: 'facts' });
  for (const [label, value, testid] of items) {
    list.append(h('dt', {}, label), h('dd', testid ? { 'data-testid': testid } : {}, value));
  }
  return list;
}
