// The rater's page speaks to people who judge answers, not to engineers: every word they see that
// comes from a code (a flag, a side, a score) is turned into plain words here, once.

import type { RatingInput, Side } from '../../clients/rating';

export const SIDES = ['a', 'b'] as const;
export type SideKey = (typeof SIDES)[number];

/** What each score means, shown beside its digit. */
export const SCALE: ReadonlyArray<{ value: number; word: string }> = [
  { value: 1, word: 'Poor' },
  { value: 2, word: 'Weak' },
  { value: 3, word: 'Fair' },
  { value: 4, word: 'Good' },
  { value: 5, word: 'Excellent' },
];

const FLAGS: Record<string, { word: string; hint: string }> = {
  inaccurate: { word: 'Inaccurate', hint: 'Gets a fact wrong or invents one' },
  unpersuasive: { word: 'Unpersuasive', hint: 'Would not convince the reader' },
  too_generic: { word: 'Too generic', hint: 'Could be about anything; not specific enough' },
  unsafe: { word: 'Unsafe', hint: 'Harmful, unfair or risky to publish' },
};

export function flagWord(flag: string): string {
  return FLAGS[flag]?.word ?? humanize(flag);
}

export function flagHint(flag: string): string {
  return FLAGS[flag]?.hint ?? '';
}

const ORIGINS: Record<Side, string> = {
  base: 'the original model, before training',
  tuned: 'the trained model',
  compare: 'the other trained model',
};

export function originWords(side: Side): string {
  return ORIGINS[side];
}

/** `asking_price` → "Asking price". */
export function humanize(key: string): string {
  const words = key.replace(/[_-]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function emptyRating(): RatingInput {
  return { a: { scores: {}, flags: [] }, b: { scores: {}, flags: [] }, preference: null, comment: null, edited: null };
}

/** Whether the rater has given anything at all for the item. */
export function hasAnything(r: RatingInput): boolean {
  return (
    SIDES.some((s) => Object.keys(r[s].scores).length > 0 || r[s].flags.length > 0) ||
    r.preference !== null ||
    (r.comment ?? '').trim() !== '' ||
    (r.edited ?? '').trim() !== ''
  );
}
