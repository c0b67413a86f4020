// tsc only emits JavaScript; the page, its stylesheet and its icon are copied next to it.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const from = join(here, 'static');
const to = join(here, 'dist');
mkdirSync(to, { recursive: true });
for (const name of readdirSync(from)) {
  copyFileSync(join(from, name), join(to, name));
}
// The page's icon is the app icon, kept once in icons/.
copyFileSync(join(here, '..', 'icons', '32x32.png'), join(to, 'favicon.png'));
