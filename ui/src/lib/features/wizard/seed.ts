// "Train again" from elsewhere in the app: a new draft from an earlier run's model and settings on
// a given dataset version, then the wizard.

import { runs } from '../../clients/runs';
import { models, type Model } from '../../clients/models';
import type { DatasetVersion } from '../../clients/datasets';
import { go } from '../../app/router.svelte';
import { goalOf } from '../runs/goals';
import { seedFromRun, type ModelChoice } from './draft.svelte';

/** The wizard's choice for an installed model, as the model step offers it. */
export function modelChoice(m: Model): ModelChoice {
  // Hub models are found by their snapshot folder; others by the place they were added from.
  const ref = m.path ?? (m.source === 'hub' ? String(m.id) : m.location);
  return {
    kind: m.source === 'bundled' ? 'bundled' : 'installed',
    ref,
    name: m.name,
    gguf: ref.toLowerCase().endsWith('.gguf'),
    license: m.license,
    commercialUse: m.commercial_use,
  };
}

/** Seeds the wizard from run `runId` on `version` of `dataset` and opens it. */
export async function trainAgain(runId: number, dataset: string, version: DatasetVersion): Promise<void> {
  const run = await runs.get(runId);
  const model = await models.get(run.model_id);
  seedFromRun(
    run,
    modelChoice(model),
    { dataset, version: version.version, rows: version.rows, splits: null, p95Tokens: null, imported: null },
    goalOf(runId),
  );
  go('new', 'goal');
}
