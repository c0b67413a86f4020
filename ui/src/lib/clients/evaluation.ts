// Evaluations: the same held-out prompts answered by the base model, the tuned one and optionally
// another run, scored against the references, kept with the run.

import { api } from '../api';
import { evalRunWithProgress } from '../transport';
import type { EvalProgress, EvalRequest, EvalResults, Evaluation, SavedTable, TableFormat } from '../../generated/api';

export type {
  EvalItem,
  EvalOutput,
  EvalProgress,
  EvalRequest,
  EvalResults,
  Evaluation,
  ItemMetrics,
  LabelMetric,
  LabelMetrics,
  SavedTable,
  Side,
  SideMetrics,
  TableFormat,
  TextMetrics,
} from '../../generated/api';

export const evaluation = {
  /** Evaluations, newest first; only those a run answered in when `run` is given. */
  list: (run: number | null = null): Promise<Evaluation[]> => api.list_evaluations(run === null ? {} : { run }),
  /** The newest evaluation a run answered in, if any. */
  latestFor: async (run: number): Promise<Evaluation | null> => (await api.list_evaluations({ run }))[0] ?? null,
  results: (id: number): Promise<EvalResults> => api.eval_results({ id }),
  /** Runs an evaluation, telling `onProgress` of each stage as it goes; settles with the stored evaluation. */
  run: (req: EvalRequest, onProgress: (p: EvalProgress) => void): Promise<Evaluation> =>
    evalRunWithProgress<EvalProgress, Evaluation>(req, onProgress),
  /** Every item's answers as CSV (one line per item and side) or JSON lines (one per item). */
  exportText: (id: number, format: TableFormat): Promise<string> => api.eval_export({ id, format }),
  /** Saves the same text into a file: a bare name goes into Whetstone's exports folder. */
  save: (id: number, format: TableFormat, out: string, overwrite: boolean): Promise<SavedTable> =>
    api.save_table({ table: 'evaluation', id, format, out, overwrite }),
};
