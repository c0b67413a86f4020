// Models added to Whetstone, the catalog of models it can fine-tune, and whether a job fits.

import { api } from '../api';
import type { CatalogItem, Model, Plan, PlanRequest } from '../../generated/api';

export type { CatalogItem, Fit, MemoryBreakdown, Model, ModelSource, Plan, PlanRequest, TimeEstimate } from '../../generated/api';

export const models = {
  list: (): Promise<Model[]> => api.list_models(),
  get: (id: number): Promise<Model> => api.get_model({ id }),
  catalog: (): Promise<CatalogItem[]> => api.catalog(),
  /** Adds a model folder (config.json, safetensors, tokenizer.json) or a GGUF file by its path. */
  import: (path: string): Promise<Model> => api.import_model({ path }),
  /** Peak memory, whether it fits this machine, and how long the run would take. */
  plan: (req: PlanRequest): Promise<Plan> => api.plan(req),
};
