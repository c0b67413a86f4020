// Models added to Whetstone and the catalog of models it can fine-tune.

import { api } from '../api';
import type { CatalogItem, Model } from '../../generated/api';

export type { CatalogItem, Model, ModelSource } from '../../generated/api';

export const models = {
  list: (): Promise<Model[]> => api.list_models(),
  get: (id: number): Promise<Model> => api.get_model({ id }),
  catalog: (): Promise<CatalogItem[]> => api.catalog(),
};
