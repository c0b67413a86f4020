// Whether the review pages are shared now, for the panels of a session: the invitation links start
// with the address raters can reach.

import type { ReviewShare } from '../../clients/review';

export const sharing = $state<{ current: ReviewShare | null }>({ current: null });

/** The start of a rater's link, before `/review#token=`. */
export function linkBase(share: ReviewShare): string {
  return (share.links[0] ?? '').replace(/\/review#token=$/, '');
}
