// The screens. Each one fetches its own data and returns the element to show.

import { call } from './transport.js';
import { h, table, facts } from './dom.js';
import * as fmt from './format.js';
import type { CatalogItem, Dataset, DefaultModel, Hardware, Model, Overview, Run } from './types.js';

export interface View {
  title: string;
  render(): Promise<HTMLElement>;
}

function section(title: string, testid: string, ...body: (Node | string)[]): HTMLElement {
  return h('section', { class: 'card', 'data-testid': testid }, h('h2', {}, title), ...body);
}

function empty(testid: string, text: string): HTMLElement {
  return h('p', { class: 'empty', 'data-testid': testid }, text);
}

function hardwareCard(hw: Hardware): HTMLElement {
  const physical =
    hw.cpu_physical_cores === null
      ? null
      : h(
          'span',
          { class: 'muted' },
          ' (',
          h('span', { 'data-testid': 'cpu-physical-cores' }, hw.cpu_physical_cores),
          ' physical cores in this machine)',
        );
  const cores = h('span', {}, h('span', { 'data-testid': 'cpu-cores' }, hw.cpu_cores), ' available to Whetstone', physical);
  const gpus =
    hw.gpus.length === 0
      ? h(
          'div',
          {},
          empty('no-gpu', 'No GPU detected. Whetstone uses the processor instead, which is slower.'),
          ...hw.gpu_notes.map((note) => h('p', { class: 'note', 'data-testid': 'gpu-note' }, note)),
        )
      : h(
          'ul',
          { class: 'gpus', 'data-testid': 'gpu-list' },
          ...hw.gpus.map((g) =>
            h(
              'li',
              {},
              h('strong', {}, g.name),
              ` (${g.backend}): ${fmt.bytes(g.vram_total_bytes)} of memory, ${fmt.bytes(g.vram_free_bytes)} free`,
            ),
          ),
        );
  return section(
    'This computer',
    'hardware',
    facts([
      ['Processor', hw.cpu_model, 'cpu-model'],
      ['Processor cores', cores],
      ['Memory (RAM)', fmt.bytes(hw.ram_total_bytes), 'ram-total'],
      ['Memory free now', fmt.bytes(hw.ram_available_bytes), 'ram-available'],
    ]),
    h('h3', {}, 'Graphics cards (GPU)'),
    gpus,
  );
}

function defaultModelCard(model: DefaultModel | null): HTMLElement {
  if (model === null) {
    return section(
      'Starter model',
      'default-model',
      empty(
        'no-default-model',
        'The small starter model is not on this computer yet. Run scripts/setup.sh to download it.',
      ),
    );
  }
  return section(
    'Starter model',
    'default-model',
    h('p', { class: 'lead' }, 'A small model that comes with Whetstone, ready to fine-tune.'),
    facts([
      ['Name', model.name, 'default-model-name'],
      ['Size', `${fmt.parameters(model.parameters)} parameters`, 'default-model-params'],
      ['License', model.license ?? 'not stated in the file', 'default-model-license'],
      ['Architecture', model.architecture],
      ['Context length', fmt.count(model.context_length, 'token')],
      ['File size', fmt.bytes(model.file_bytes)],
    ]),
  );
}

/** Whether a business may use the model, in words: shown wherever a model is picked. */
function commercialBadge(allowed: boolean | null): HTMLElement {
  const [text, kind] =
    allowed === true ? ['Commercial use allowed', 'ok'] : allowed === false ? ['Not for commercial use', 'no'] : ['Read the license', 'unknown'];
  return h('span', { class: `badge badge-${kind}`, 'data-testid': 'commercial-use' }, text);
}

function modelsTable(models: Model[]): HTMLElement {
  if (models.length === 0) {
    return empty('models-empty', 'No models added yet.');
  }
  return table(
    ['Name', 'Source', 'Size', 'License', 'Commercial use', 'Added'],
    models.map((m) => [
      m.name,
      m.source,
      fmt.parameters(m.parameters),
      m.license ?? 'unknown',
      commercialBadge(m.commercial_use),
      fmt.when(m.added_at),
    ]),
    'models-table',
  );
}

function catalogTable(items: CatalogItem[]): HTMLElement {
  return table(
    ['Model', 'Size', 'Context', 'License', 'Commercial use', 'Download', 'Installed'],
    items.map((c) => [
      h('span', { title: c.repo }, c.name),
      fmt.parameters(c.parameters),
      fmt.count(c.context_length, 'token'),
      c.license_note ? h('span', { title: c.license_note }, c.license) : c.license,
      commercialBadge(c.commercial_use),
      c.gated ? 'accept the license on the hub first' : 'open',
      c.installed_model_id === null ? 'no' : `yes (#${c.installed_model_id})`,
    ]),
    'catalog-table',
  );
}

function datasetsTable(datasets: Dataset[]): HTMLElement {
  if (datasets.length === 0) {
    return empty('datasets-empty', 'No datasets imported yet.');
  }
  return table(
    ['Name', 'Examples', 'Imported from', 'Imported'],
    datasets.map((d) => [d.name, d.rows.toLocaleString('en-US'), d.source_path, fmt.when(d.created_at)]),
    'datasets-table',
  );
}

function runsTable(runs: Run[]): HTMLElement {
  if (runs.length === 0) {
    return empty('runs-empty', 'No training runs yet.');
  }
  return table(
    ['Run', 'Status', 'Model', 'Dataset', 'Started', 'Last update'],
    runs.map((r) => [
      `#${r.id}`,
      r.status,
      `#${r.model_id}`,
      r.dataset_id === null ? 'none' : `#${r.dataset_id}`,
      fmt.when(r.created_at),
      fmt.when(r.updated_at),
    ]),
    'runs-table',
  );
}

export const views: Record<string, View> = {
  home: {
    title: 'Home',
    async render() {
      const o = await call<Overview>('overview');
      return h(
        'div',
        { class: 'grid', 'data-testid': 'home' },
        hardwareCard(o.hardware),
        defaultModelCard(o.default_model),
        section('Your models', 'home-models', modelsTable(o.models)),
        section('Your datasets', 'home-datasets', datasetsTable(o.datasets)),
        section('Training runs', 'home-runs', runsTable(o.runs)),
      );
    },
  },
  models: {
    title: 'Models',
    async render() {
      const [models, catalog] = await Promise.all([call<Model[]>('list_models'), call<CatalogItem[]>('catalog')]);
      return h(
        'div',
        { class: 'grid' },
        section('Models', 'models-view', h('p', { class: 'lead' }, 'Language models Whetstone knows about.'), modelsTable(models)),
        section(
          'Models you can add',
          'catalog-view',
          h('p', { class: 'lead' }, 'Open models Whetstone can fine-tune. Check the license before you use one for work.'),
          catalogTable(catalog),
        ),
      );
    },
  },
  datasets: {
    title: 'Datasets',
    async render() {
      const datasets = await call<Dataset[]>('list_datasets');
      return section(
        'Datasets',
        'datasets-view',
        h('p', { class: 'lead' }, 'Example conversations you have imported to teach a model.'),
        datasetsTable(datasets),
      );
    },
  },
  runs: {
    title: 'Runs',
    async render() {
      const runs = await call<Run[]>('list_runs');
      return section(
        'Training runs',
        'runs-view',
        h('p', { class: 'lead' }, 'Each run fine-tunes a model on a dataset.'),
        runsTable(runs),
      );
    },
  },
};
