// The page's icon is the app icon, kept once in icons/; Vite does not look outside ui/.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const to = join(here, 'dist');
mkdirSync(to, { recursive: true });
copyFileSync(join(here, '..', 'icons', '32x32.png'), join(to, 'favicon.png'));
