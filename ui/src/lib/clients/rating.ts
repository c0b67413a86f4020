// The rater's side of a review: their queue, one item at a time, and their ratings. The invite
// token travels in the Authorization header (the transport takes it from the link's #token=);
// the review server puts it into each call itself, so the token field of the arguments stays empty.

import { api } from '../api';
import type { RaterView, RatingInput, SubmitResult } from '../../generated/api';

export type {
  Choice,
  Criterion,
  Message,
  Origins,
  OutputRating,
  Progress,
  QueueEntry,
  RaterItem,
  RaterView,
  RatingInput,
  Side,
  SubmitResult,
} from '../../generated/api';

const FROM_HEADER = '';

export const rating = {
  /** The given item of the rater's queue, or the first one they have not rated. */
  next: (item?: number): Promise<RaterView> =>
    api.review_next(item === undefined ? { token: FROM_HEADER } : { token: FROM_HEADER, item }),
  /** Stores the rating as the rater's current one for the item. */
  submit: (item: number, r: RatingInput): Promise<SubmitResult> =>
    api.review_submit({
      token: FROM_HEADER,
      item,
      a: r.a,
      b: r.b,
      ...(r.preference === null ? {} : { preference: r.preference }),
      ...(r.comment === null ? {} : { comment: r.comment }),
      ...(r.edited === null ? {} : { edited: r.edited }),
    }),
};
