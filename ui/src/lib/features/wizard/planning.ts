// The settings a plan is made with before the user has chosen any, and the plan of a choice:
// the fit badges, the trainable-parameter count and the preflight all ask the backend's planner.

import { models, type Plan } from '../../clients/models';
import { runs, type TrainDefaults, type TrainSettings } from '../../clients/runs';
import { METHOD_QUANT, type Method } from './draft.svelte';

const defaultsCache = new Map<string, Promise<TrainDefaults>>();

/** The defaults, field descriptions and presets for `examples` rows of which 95% fit in `p95` tokens. */
export function trainDefaults(examples: number | null, p95: number | null): Promise<TrainDefaults> {
  const key = `${examples}:${p95}`;
  let found = defaultsCache.get(key);
  if (!found) {
    found = runs.defaults({ examples, p95_tokens: p95 });
    // A failed answer is not kept: the next call asks again.
    found.catch(() => defaultsCache.delete(key));
    defaultsCache.set(key, found);
  }
  return found;
}

/** The method a model gets: a GGUF-only method falls back to LoRA on a model that is not GGUF. */
export function methodFor(method: Method, gguf: boolean): Method {
  return method === 'gguf' && !gguf ? 'lora' : method;
}

export interface PlanInput {
  model: string;
  /** An imported dataset's name; null to plan by the longest example length alone. */
  data: string | null;
  settings: TrainSettings | null;
  method: Method;
}

/** The planner's answer for `input`, with the defaults standing in for settings not chosen yet. */
export async function planFor(input: PlanInput): Promise<Plan> {
  const settings = input.settings ?? (await trainDefaults(null, null)).defaults;
  return models.plan({
    model: input.model,
    data: input.data,
    settings: { ...settings, quant: METHOD_QUANT[input.method] },
    device: null,
    base: null,
  });
}
