// Datasets imported into Whetstone: import, versions, cleaning, splits, token lengths and previews.

import { api } from '../api';
import type {
  CleanOptions,
  CleanResult,
  DataStats,
  Dataset,
  DatasetVersion,
  EditResult,
  ImportResult,
  PiiDecisions,
  Preview,
  RowEdit,
  RowsPage,
  SplitResult,
} from '../../generated/api';

export type {
  CleanOptions,
  CleanResult,
  DataStats,
  Dataset,
  DatasetVersion,
  EditResult,
  ImportResult,
  Message,
  PiiDecision,
  PiiDecisions,
  PiiFinding,
  Preview,
  Proposal,
  Role,
  RowEdit,
  RowView,
  RowsPage,
  SplitCounts,
  SplitResult,
} from '../../generated/api';

export const datasets = {
  list: (): Promise<Dataset[]> => api.list_datasets(),
  get: (id: number): Promise<Dataset> => api.get_dataset({ id }),
  /** Reads a file on this machine as a new dataset; rows that cannot be read come back with line and reason. */
  import: (path: string, name: string | null): Promise<ImportResult> =>
    api.data_import({ path, name, map: [], format: null, max_row_bytes: null }),
  versions: (dataset: string): Promise<DatasetVersion[]> => api.data_versions({ dataset }),
  rows: (dataset: string, offset: number, limit: number): Promise<RowsPage> =>
    api.data_rows({ dataset, version: null, offset, limit }),
  /** A page of one version's rows. */
  versionRows: (dataset: string, version: number, offset: number, limit: number): Promise<RowsPage> =>
    api.data_rows({ dataset, version, offset, limit }),
  /** Rows edited and deleted by hand, saved as a new version; `version` must still be the latest. */
  edit: (dataset: string, version: number, edits: RowEdit[], deletes: number[]): Promise<EditResult> =>
    api.data_edit({ dataset, version, edits, deletes }),
  /** What a cleaning would remove; nothing changes. */
  proposeCleaning: (dataset: string, options: CleanOptions): Promise<CleanResult> =>
    api.data_clean({ dataset, version: null, options, apply: false, decisions: { default: null, findings: {} } }),
  /** Applies the cleaning as a new version of the dataset. */
  applyCleaning: (dataset: string, options: CleanOptions, decisions: PiiDecisions): Promise<CleanResult> =>
    api.data_clean({ dataset, version: null, options, apply: true, decisions }),
  split: (dataset: string, val: number, test: number, seed: number): Promise<SplitResult> =>
    api.data_split({ dataset, version: null, val, test, seed, leakage_threshold: null }),
  /** Token lengths with the model's tokenizer and chat template (the bundled model's when `model` is null). */
  stats: (dataset: string, model: string | null, maxLen: number): Promise<DataStats> =>
    api.data_stats({ dataset, version: null, model, max_len: maxLen, split: null }),
  /** One row as the model sees it, with the tokens training learns from marked. */
  preview: (dataset: string, row: number, model: string | null, maxLen: number): Promise<Preview> =>
    api.data_preview({ dataset, version: null, row, model, max_len: maxLen }),
};
