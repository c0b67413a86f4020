// A setting's value judged against its description from the backend: refused outside its limits,
// warned about outside its safe range. The texts are the backend's, the same `whet train` prints.

import type { SettingDoc, TrainSettings } from '../../../clients/runs';

export type SettingValue = number | string | boolean | null;

export interface Judgement {
  /** Why the run would refuse this value; null when it is allowed. */
  error: string | null;
  /** Why this value is risky; null when it is in the safe range. */
  warning: string | null;
}

export function valueOf(settings: TrainSettings, key: string): SettingValue {
  return (settings as unknown as Record<string, SettingValue>)[key] ?? null;
}

export function judge(doc: SettingDoc, value: SettingValue): Judgement {
  if (value === null || value === '') {
    return { error: doc.optional ? null : `${doc.label} needs a value.`, warning: null };
  }
  if (typeof value !== 'number') return { error: null, warning: null };
  if (!Number.isFinite(value)) return { error: `${doc.label} must be a number.`, warning: null };
  if (doc.kind === 'integer' && !Number.isInteger(value)) return { error: `${doc.label} must be a whole number.`, warning: null };
  if (doc.min !== null && value < doc.min) return { error: `${doc.label} must be at least ${doc.min}.`, warning: null };
  if (doc.max !== null && value > doc.max) return { error: `${doc.label} must be at most ${doc.max}.`, warning: null };
  if (doc.key === 'lr' && value <= 0) return { error: 'The learning rate must be above 0.', warning: null };
  if (doc.safe_min !== null && value < doc.safe_min) return { error: null, warning: doc.below };
  if (doc.safe_max !== null && value > doc.safe_max) return { error: null, warning: doc.above };
  return { error: null, warning: null };
}

/** Settings whose value the run would refuse, each in plain words. */
export function refused(docs: SettingDoc[], settings: TrainSettings): string[] {
  return docs.map((d) => judge(d, valueOf(settings, d.key)).error).filter((e): e is string => e !== null);
}

/** Keys whose value differs from the default. */
export function changed(docs: SettingDoc[], settings: TrainSettings, defaults: TrainSettings): string[] {
  return docs.filter((d) => valueOf(settings, d.key) !== valueOf(defaults, d.key)).map((d) => d.key);
}

/** A number as people write it: 0.0002 rather than 2e-4. */
export function plain(x: number | null): string {
  if (x === null) return '';
  const shown = String(x);
  if (!shown.includes('e')) return shown;
  // Below 1e-6 JavaScript switches to exponents; write enough decimals for six significant digits.
  const decimals = Math.min(20, Math.ceil(-Math.log10(Math.abs(x))) + 5);
  return x.toFixed(decimals).replace(/\.?0+$/, '');
}
