// What the user has entered in the new-run wizard so far. It lives in one reactive object that every
// step reads and writes, so Back and Next never lose anything, and it is kept in localStorage so
// that closing the app or the tab and coming back finds the draft where it was left.

import type { Message } from '../../clients/datasets';
import type { PresetName, QuantMode, Run, TrainSettings } from '../../clients/runs';

export const STEPS = ['goal', 'model', 'data', 'settings', 'preflight', 'launch'] as const;
export type StepName = (typeof STEPS)[number];

export const STEP_TITLES: Record<StepName, string> = {
  goal: 'Goal',
  model: 'Base model',
  data: 'Data',
  settings: 'Method and settings',
  preflight: 'Preflight',
  launch: 'Launch',
};

export interface Goal {
  name: string;
  /** One sentence: what the tuned model should do. */
  task: string;
  exampleInput: string;
  exampleOutput: string;
}

export type ModelKind = 'bundled' | 'installed' | 'catalog';

export interface ModelChoice {
  kind: ModelKind;
  /** What the API is given: a path on this machine, or a catalog repo id for one not downloaded. */
  ref: string;
  name: string;
  /** A GGUF file, which can train on its own compressed blocks. */
  gguf: boolean;
  license: string | null;
  commercialUse: boolean | null;
}

/** What reading the file found, kept so that going back to the Data step shows it again. */
export interface ImportSummary {
  path: string;
  format: string;
  /** The most common shape of the rows, e.g. `prompt/response`. */
  shape: string | null;
  rows: number;
  accepted: number;
  rejected: number;
  /** The first rejected rows, each with its line in the file and why. */
  rejections: { line: number; reason: string }[];
  /** Where every rejected row was written, when there were more than the report lists. */
  rejectionsFile: string | null;
}

export interface DataChoice {
  /** The imported dataset's name, which `start_run` takes as `data` (its train split) and `val`. */
  dataset: string;
  version: number;
  rows: number;
  /** Rows in each split once the dataset is split; null before. */
  splits: { train: number; val: number; test: number } | null;
  /** Length in tokens that 95% of the rows fit in, once measured. */
  p95Tokens: number | null;
  /** The import's report when the file was imported in this wizard. */
  imported: ImportSummary | null;
}

/** A row's new content while it waits to be saved: its turns, or its text. */
export type EditedRow = { messages: Message[] } | { text: string };

/** Rows changed by hand in the Data step's review and not saved yet. They live in the draft, so
 *  moving between steps or reloading keeps them until they are saved or discarded. */
export interface PendingReview {
  dataset: string;
  /** The version the row numbers refer to; saving is refused once it is no longer the latest. */
  version: number;
  /** New content by row number. */
  edits: Record<string, EditedRow>;
  /** Row numbers to leave out, in the order they were deleted. */
  deletes: number[];
}

/** LoRA on a full-precision base, QLoRA on a 4-bit (NF4) base, or a GGUF base as its file has it. */
export type Method = 'lora' | 'qlora' | 'gguf';

export const METHOD_QUANT: Record<Method, QuantMode> = { lora: 'none', qlora: 'nf4', gguf: 'native' };

export interface Draft {
  step: StepName;
  goal: Goal;
  model: ModelChoice | null;
  data: DataChoice | null;
  method: Method;
  preset: PresetName | null;
  /** Every setting of the run; null until the defaults have been read from the backend. */
  settings: TrainSettings | null;
  /** Unsaved edits and deletions of the chosen dataset's rows. */
  review: PendingReview | null;
  /** The run this draft started, once it has. */
  launched: number | null;
}

const KEY = 'whetstone.wizard.draft.v1';

function empty(): Draft {
  return {
    step: 'goal',
    goal: { name: '', task: '', exampleInput: '', exampleOutput: '' },
    model: null,
    data: null,
    method: 'lora',
    preset: null,
    settings: null,
    review: null,
    launched: null,
  };
}

function load(): Draft {
  try {
    const text = localStorage.getItem(KEY);
    if (text === null) return empty();
    const saved = JSON.parse(text) as Partial<Draft>;
    // A draft saved by an older version may lack fields; what it has is kept.
    const fresh = empty();
    return {
      ...fresh,
      ...saved,
      goal: { ...fresh.goal, ...saved.goal },
      step: STEPS.includes(saved.step as StepName) ? (saved.step as StepName) : 'goal',
    };
  } catch {
    // Storage switched off, or a draft that is not JSON: start afresh rather than fail.
    return empty();
  }
}

export const draft = $state<Draft>(load());

/** Writes the draft to localStorage; called whenever it changes. */
export function save(): void {
  try {
    localStorage.setItem(KEY, JSON.stringify($state.snapshot(draft)));
  } catch {
    // Without storage the draft still lives until the page closes.
  }
}

/** Forgets everything entered and goes back to the first step. */
export function startOver(): void {
  Object.assign(draft, empty());
  try {
    localStorage.removeItem(KEY);
  } catch {
    // Nothing stored, nothing to remove.
  }
}

/**
 * Starts a fresh draft from an earlier run, to train again: the run's model, method and every setting,
 * on `data` (a new version of its dataset, say), named after the run's goal. Opens at the first step,
 * so that each step can be checked before Start.
 */
export function seedFromRun(run: Run, model: ModelChoice, data: DataChoice, goal: { name: string; task: string } | null): void {
  const settings = (run.config as { settings?: TrainSettings } | null)?.settings ?? null;
  const method: Method = settings?.quant === 'nf4' ? 'qlora' : settings?.quant === 'native' && model.gguf ? 'gguf' : 'lora';
  Object.assign(draft, {
    ...empty(),
    goal: {
      name: goal ? `${goal.name} (again)` : `Run #${run.id} again`,
      task: goal?.task ?? '',
      exampleInput: '',
      exampleOutput: '',
    },
    model,
    data,
    method,
    settings: settings === null ? null : { ...settings, quant: METHOD_QUANT[method] },
  });
  save();
}

/** What a step still needs before the run can start, in plain words; empty when it is complete. */
export function missing(step: StepName): string[] {
  const out: string[] = [];
  if (step === 'goal') {
    if (draft.goal.name.trim() === '') out.push('a name for the run (Goal)');
  } else if (step === 'model') {
    if (draft.model === null) out.push('a base model (Base model)');
    else if (draft.model.kind === 'catalog')
      out.push(`${draft.model.name} on this computer: download it with \`whet model pull ${draft.model.ref}\`, or pick a model that is here (Base model)`);
  } else if (step === 'data') {
    if (draft.data === null) out.push('training data: import a file or pick a dataset (Data)');
    else if (draft.data.splits !== null && draft.data.splits.train === 0)
      out.push('training rows: the split left none for training (Data)');
  } else if (step === 'settings') {
    if (draft.settings === null) out.push('settings (Method and settings)');
  }
  return out;
}
