// What the start screen needs: this machine, the bundled model and everything added so far.

import { api } from '../api';
import type { DefaultModel, Devices, Hardware, Overview } from '../../generated/api';

export type { DefaultModel, DeviceOption, Devices, Gpu, Hardware, Overview, Selection, WorkerKind } from '../../generated/api';

export const system = {
  /** Hardware, models, datasets, runs and the starter model in one round trip. */
  overview: (): Promise<Overview> => api.overview(),
  hardware: (): Promise<Hardware> => api.hardware(),
  defaultModel: (): Promise<DefaultModel | null> => api.default_model(),
  /** Shows a folder in the system's file manager; only the desktop window may. */
  openFolder: (path: string): Promise<string> => api.open_folder({ path }),
  /** Where runs can train (processor, each GPU), which worker trains there, and what `auto` picks. */
  devices: (): Promise<Devices> => api.devices(),
};
