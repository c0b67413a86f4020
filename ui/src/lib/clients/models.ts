// Models added to Whetstone, the catalog of models it can fine-tune, and whether a job fits.

import { api } from '../api';
import { pullModel } from '../transport';
import type { CancelledPull, CatalogItem, HubModel, Model, Plan, PlanRequest, FileProgress } from '../../generated/api';

export type { CatalogItem, Fit, HubModel, FileProgress, MemoryBreakdown, MethodFit, Model, ModelSource, Plan, PlanRequest, TimeEstimate } from '../../generated/api';

export const models = {
  list: (): Promise<Model[]> => api.list_models(),
  get: (id: number): Promise<Model> => api.get_model({ id }),
  catalog: (): Promise<CatalogItem[]> => api.catalog(),
  /** Adds a model folder (config.json, safetensors, tokenizer.json) or a GGUF file by its path. */
  import: (path: string): Promise<Model> => api.import_model({ path }),
  /** Models on the hub whose name matches `query`, most downloaded first. */
  search: (query: string, limit = 20): Promise<HubModel[]> => api.search_models({ query, limit }),
  /**
   * Downloads a hub model into the shared cache and adds it, telling `onProgress` how far it has
   * come; a download stopped earlier continues from where it stopped.
   */
  download: (repo: string, onProgress: (p: FileProgress) => void, token: string | null = null): Promise<Model> =>
    pullModel({ repo, revision: null, files: [], token, offline: false }, onProgress),
  /** Stops a download; what it fetched is kept for the next try. */
  cancelDownload: (repo: string): Promise<CancelledPull> => api.cancel_pull({ repo }),
  /** Peak memory, whether it fits this machine, and how long the run would take. */
  plan: (req: PlanRequest): Promise<Plan> => api.plan(req),
};
