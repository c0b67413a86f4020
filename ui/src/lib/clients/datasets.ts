// Datasets imported into Whetstone.

import { api } from '../api';
import type { Dataset } from '../../generated/api';

export type { Dataset } from '../../generated/api';

export const datasets = {
  list: (): Promise<Dataset[]> => api.list_datasets(),
  get: (id: number): Promise<Dataset> => api.get_dataset({ id }),
};
