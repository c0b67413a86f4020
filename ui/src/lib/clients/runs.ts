// Training runs: their state, their metrics and the buttons that pause, stop and resume them.

import { api } from '../api';
import { followRun, type Following } from '../transport';
import type {
  ConfigOpened,
  ConfigSaved,
  DefaultsRequest,
  Discarded,
  RunFiles,
  LoggedEvent,
  Run,
  RunEvents,
  RunExport,
  RunSeries,
  RunExportReport,
  RunStatus,
  StartRun,
  TrainDefaults,
  TrainSettings,
} from '../../generated/api';

export type {
  ConfigOpened,
  ConfigSaved,
  CheckpointInfo,
  Discarded,
  ExportFormat,
  GgufQuant,
  LoggedEvent,
  Phase,
  RunFiles,
  Preset,
  PresetName,
  QuantMode,
  Run,
  RunExport,
  RunExportReport,
  RunStatus,
  SettingDoc,
  StartRun,
  TrainDefaults,
  TrainSettings,
} from '../../generated/api';

/** One point of a run's loss curve. */
export interface LossPoint {
  kind: 'train' | 'eval';
  step: number;
  loss: number;
}

/** The loss point a logged step or evaluation adds to the curve, if it is one. */
export function pointOf(event: LoggedEvent): LossPoint | null {
  if (event.type === 'step' && Number.isFinite(event.metrics.loss)) {
    return { kind: 'train', step: event.metrics.step, loss: event.metrics.loss };
  }
  if (event.type === 'eval' && Number.isFinite(event.metrics.loss)) {
    return { kind: 'eval', step: event.metrics.step, loss: event.metrics.loss };
  }
  return null;
}

export type RunAction = 'pause' | 'stop' | 'resume';

const ACTIVE: RunStatus[] = ['running', 'queued'];
const RESUMABLE: RunStatus[] = ['paused', 'stopped', 'interrupted', 'failed'];

export const runs = {
  list: (): Promise<Run[]> => api.list_runs(),
  /** Every setting's default and meaning, and presets sized for the data and this machine. */
  defaults: (req: DefaultsRequest): Promise<TrainDefaults> => api.train_defaults(req),
  /** Reads a settings file (.toml, .yaml or .json, as `whet train --config` takes it) over the defaults. */
  openSettings: (path: string): Promise<ConfigOpened> => api.config_open({ path }),
  /** Writes the settings to a file `whet train --config` reads; an existing file only when `overwrite`. */
  saveSettings: (path: string, settings: TrainSettings, overwrite: boolean): Promise<ConfigSaved> =>
    api.config_save({ path, settings, overwrite }),
  /** Starts training in a worker of its own; the run goes on when the window closes. */
  start: (req: StartRun): Promise<Run> => api.start_run(req),
  get: (id: number): Promise<Run> => api.get_run({ id }),

  /** The whole loss history thinned for drawing, and the event-log offset to follow the run from. */
  series: (id: number, buckets?: number): Promise<RunSeries> => api.run_series(buckets === undefined ? { id } : { id, buckets }),
  /**
   * Pushed updates of a run from byte `since` of its event log (0: from the start): the run's state
   * and its new events, as the worker logs them, until the run ends or `stop` is called.
   */
  follow: (id: number, since: number, onBatch: (batch: RunEvents) => void): Following => followRun<RunEvents>(id, since, onBatch),
  pause: (id: number): Promise<Run> => api.pause_run({ id }),
  stop: (id: number): Promise<Run> => api.stop_run({ id }),
  resume: (id: number): Promise<Run> => api.resume_run({ id }),
  /** Where the adapter and the best and last checkpoints are, and what discarding would delete. */
  files: (id: number): Promise<RunFiles> => api.run_files({ id }),
  /** Stops the run and deletes its own files; the record stays, marked discarded. */
  discard: (id: number): Promise<Discarded> => api.discard_run({ id }),
  isActive: (run: Run): boolean => ACTIVE.includes(run.status),
  /** Writes a run's result as a PEFT adapter, merged model, GGUF, Ollama model or Axolotl job. */
  export: (req: RunExport): Promise<RunExportReport> => api.export_run(req),
  /** Only the desktop window may open the system's file manager. */
  openFolder: (path: string): Promise<string> => api.open_folder({ path }),
  /** A run whose adapter is saved and will not change any more. */
  canExport: (run: Run): boolean => run.status === 'completed' || run.status === 'stopped',
  /** A run whose files can still be thrown away. */
  canDiscard: (run: Run): boolean => run.status !== 'discarded',
  /** What the user may do with a run in its current state. */
  actions(run: Run): RunAction[] {
    if (ACTIVE.includes(run.status)) return ['pause', 'stop'];
    if (RESUMABLE.includes(run.status)) return ['resume'];
    return [];
  },
};
