// Light or dark, as the system says. The stylesheet follows `prefers-color-scheme` by itself;
// this is for what CSS cannot reach, such as the colours the chart paints on its canvas.

const query = window.matchMedia('(prefers-color-scheme: dark)');

export const theme = $state<{ dark: boolean }>({ dark: query.matches });

query.addEventListener('change', (event) => {
  theme.dark = event.matches;
});

/** A colour from the stylesheet's custom properties, as currently resolved. */
export function cssColor(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
