// Routing by URL hash (#/home, #/models, #/new/data, #/runs/3, #/evaluate/2, #/review/1/results, ...) so it works the same from the
// app's custom protocol, which serves one page, and from `whet serve` in a browser. The part after
// the screen's name (a wizard step, a run's id) is the screen's own business.

export const ROUTES = ['home', 'models', 'datasets', 'runs', 'new', 'playground', 'evaluate', 'review', 'dataqueue'] as const;
export type RouteName = (typeof ROUTES)[number];

/** The lists in the sidebar's navigation; "New run" is the action above them. */
export const NAV: readonly RouteName[] = ['home', 'models', 'datasets', 'runs', 'evaluate', 'review'];

export const TITLES: Record<RouteName, string> = {
  home: 'Home',
  models: 'Models',
  datasets: 'Datasets',
  runs: 'Runs',
  new: 'New run',
  playground: 'Playground',
  evaluate: 'Evaluate',
  review: 'Review',
  dataqueue: 'Improve a dataset',
};

interface Route {
  name: RouteName;
  /** What follows the name: `data` in `#/new/data`, `3` in `#/runs/3`; empty when nothing does. */
  rest: string;
}

function fromHash(): Route {
  const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  return (ROUTES as readonly string[]).includes(name)
    ? { name: name as RouteName, rest: rest.join('/') }
    : { name: 'home', rest: '' };
}

export const route = $state<Route>(fromHash());

window.addEventListener('hashchange', () => {
  const next = fromHash();
  route.name = next.name;
  route.rest = next.rest;
});

/** Goes to `#/name/rest`; the hashchange listener updates `route`. */
export function go(name: RouteName, rest = ''): void {
  location.hash = rest === '' ? `#/${name}` : `#/${name}/${rest}`;
}
