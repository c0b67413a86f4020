// Review queues of a dataset: variations a model writes of chosen rows, and samples of rows for experts to
// check. Nothing in a queue enters a dataset until the queue is applied as a new version.

import { api } from '../api';
import { toApiError } from '../transport';
import type {
  ApplyResult,
  AugmentRequest,
  Decision,
  QueueItemView,
  QueueItems,
  QueueSummary,
  RowView,
} from '../../generated/api';

export type {
  ApplyResult,
  AugmentMode,
  AugmentRequest,
  Decision,
  DecisionKind,
  QueueInfo,
  QueueItemView,
  QueueItems,
  QueueKind,
  QueueSummary,
  RowPart,
  Synthetic,
} from '../../generated/api';

/** A row in the plain form the backend reads back: `{"messages": [...]}` or `{"text": ...}`. */
export function rowJson(row: Pick<RowView, 'messages' | 'text'>): { messages: RowView['messages'] } | { text: string } {
  return row.text !== null ? { text: row.text } : { messages: row.messages };
}

export const dataqueue = {
  /** Has the model write variations of the chosen rows; they wait in the returned queue. */
  augment: (req: AugmentRequest): Promise<QueueItems> => api.augment_start(req),
  /** Draws `size` rows at random (the same rows for the same seed) into a queue to check. */
  sample: (dataset: string, size: number, seed: number): Promise<QueueItems> => api.data_sample({ dataset, size, seed }),
  /** The dataset's queues, newest first, with their counts. */
  list: (dataset: string): Promise<QueueSummary[]> => api.data_queues({ dataset }),
  items: (queue: number): Promise<QueueItems> => api.queue_items({ queue }),
  summary: (queue: number): Promise<QueueSummary> => api.queue_summary({ queue }),
  /** Records a decision; a later one replaces it until the queue is applied. */
  decide: (queue: number, item: number, decision: Decision): Promise<QueueItemView> => api.queue_decide({ queue, item, decision }),
  /** Makes the new version of the dataset from the queue's decisions. */
  apply: (queue: number): Promise<ApplyResult> => api.queue_apply({ queue }),
};

/** Why the backend refused a decision, in its own plain words, for showing next to the item. */
export function refusal(raw: unknown): { code: string; message: string } {
  const e = toApiError(raw, 'ui_error');
  return { code: e.code, message: e.message };
}
