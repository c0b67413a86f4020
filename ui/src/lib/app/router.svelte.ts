// Routing by URL hash (#/home, #/models, ...) so it works the same from the app's custom
// protocol, which serves one page, and from `whet serve` in a browser.

export const ROUTES = ['home', 'models', 'datasets', 'runs'] as const;
export type RouteName = (typeof ROUTES)[number];

export const TITLES: Record<RouteName, string> = {
  home: 'Home',
  models: 'Models',
  datasets: 'Datasets',
  runs: 'Runs',
};

function fromHash(): RouteName {
  const name = location.hash.replace(/^#\/?/, '');
  return (ROUTES as readonly string[]).includes(name) ? (name as RouteName) : 'home';
}

export const route = $state<{ name: RouteName }>({ name: fromHash() });

window.addEventListener('hashchange', () => {
  route.name = fromHash();
});
