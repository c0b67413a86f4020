// What the operating system says this process may use, computed independently of Whetstone.
import { readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * Logical cores this process may run on: the CPU affinity mask, capped by any cgroup v2 CPU
 * quota on our cgroup or its ancestors (whole cores, at least one) — the rule containers and
 * `taskset` impose, and the number Whetstone should size its threads by.
 */
export function usableCores() {
  let cores = os.availableParallelism();
  const quota = cgroupCpuQuota();
  if (quota !== null) cores = Math.min(cores, quota);
  return cores;
}

function cgroupCpuQuota() {
  let entry;
  try {
    entry = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
  } catch {
    return null;
  }
  if (!entry) return null;
  let path = entry.slice(3).trim();
  let best = null;
  for (;;) {
    try {
      const [max, period] = readFileSync(`/sys/fs/cgroup${path === '/' ? '' : path}/cpu.max`, 'utf8')
        .trim()
        .split(/\s+/);
      if (max !== 'max') {
        const whole = Math.max(1, Math.floor(Number(max) / Number(period)));
        best = best === null ? whole : Math.min(best, whole);
      }
    } catch {
      // no cpu controller at this level
    }
    if (path === '/' || path === '') break;
    path = path.slice(0, path.lastIndexOf('/')) || '/';
  }
  return best;
}
