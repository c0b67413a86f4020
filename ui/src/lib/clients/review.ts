// Blind review sessions, as their organiser sees them: create one from an evaluation, invite and
// revoke raters, follow who rated what, close it, read what it found and take it back into data.

import { api } from '../api';
import { followReview, type Following } from '../transport';
import type {
  AcceptResult,
  CriterionInput,
  Invitation,
  RaterKind,
  RaterStatus,
  ReviewResults,
  ReviewSessionInfo,
  ReviewShare,
  ReviewStatus,
  Rubric,
  SavedTable,
  Side,
  TableFormat,
} from '../../generated/api';

export type {
  AcceptResult,
  Alpha,
  Criterion,
  CriterionInput,
  CriterionResult,
  DisagreedItem,
  Estimate,
  FlagCount,
  GroupResults,
  Invitation,
  PreferenceResult,
  RaterKind,
  RaterStatus,
  ReviewResults,
  ReviewSessionInfo,
  ReviewShare,
  ReviewStatus,
  Rubric,
} from '../../generated/api';

/** One rating as `review_export` writes it in JSON lines, with the sides named. */
export interface RatingLine {
  rating_id: number;
  rater: string;
  kind: RaterKind;
  item: number;
  prompt: string;
  baseline: { side: Side; text: string };
  candidate: { side: Side; text: string };
  preference: 'baseline' | 'candidate' | 'tie' | null;
  comment: string | null;
  edited: string | null;
}

export interface NewSession {
  evaluation: number;
  name: string | null;
  baseline: Side;
  candidate: Side;
  criteria: CriterionInput[];
  ratersPerItem: number;
}

export const review = {
  /** The criteria every session starts with, and the flags raters can set. */
  rubric: (): Promise<Rubric> => api.review_rubric(),
  create: (s: NewSession): Promise<ReviewSessionInfo> =>
    api.review_create({
      evaluation: s.evaluation,
      ...(s.name === null ? {} : { name: s.name }),
      baseline: s.baseline,
      candidate: s.candidate,
      criteria: s.criteria,
      raters_per_item: s.ratersPerItem,
    }),
  sessions: (): Promise<ReviewSessionInfo[]> => api.review_sessions(),
  /** A named rater's invitation; its token is shown this once and never again. */
  invite: (session: number, name: string, kind: RaterKind): Promise<Invitation> => api.review_invite({ session, name, kind }),
  revoke: (rater: number): Promise<RaterStatus> => api.review_revoke({ rater }),
  status: (id: number): Promise<ReviewStatus> => api.review_status({ id }),
  /** The session's status at once and each time a rating, invitation or revocation changes it. */
  follow: (id: number, onStatus: (s: ReviewStatus) => void): Following => followReview<ReviewStatus>(id, onStatus),
  close: (id: number): Promise<ReviewSessionInfo> => api.review_close({ id }),
  results: (id: number): Promise<ReviewResults> => api.review_results({ id }),
  exportText: (id: number, format: TableFormat): Promise<string> => api.review_export({ id, format }),
  preferencesText: (id: number): Promise<string> => api.review_preferences({ id }),
  /** Saves ratings (`review`) or preference pairs (`preferences`) into a file; a bare name goes into the exports folder. */
  save: (table: 'review' | 'preferences', id: number, format: TableFormat, out: string, overwrite: boolean): Promise<SavedTable> =>
    api.save_table({ table, id, format, out, overwrite }),
  /** The ratings that came with an answer written by the rater, which can be accepted into the data. */
  edits: async (id: number): Promise<RatingLine[]> => {
    const text = await api.review_export({ id, format: 'jsonl' });
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as RatingLine)
      .filter((r) => r.edited !== null && r.edited.trim() !== '');
  },
  /** The accepted edited answers as a new version of the evaluation's dataset. */
  accept: (session: number, ratings: number[]): Promise<AcceptResult> => api.review_accept({ session, ratings }),
  /** Serves the review pages to raters on other computers, on `bind` (an address with its port). */
  share: (bind: string): Promise<ReviewShare> => api.review_share({ bind }),
  /** Stops serving the review pages. */
  unshare: (): Promise<boolean> => api.review_unshare().then((u) => u.stopped),
  /** Where the review pages are served now, if anywhere. */
  shared: (): Promise<ReviewShare | null> => api.review_shared(),
  /** The link a rater opens: the review page with their token in the fragment, which never reaches a server log. */
  link: (base: string, token: string): string => `${base.replace(/\/+$/, '')}/review#token=${token}`,
};
