// The screens. Each one fetches its own data and returns the element to show.

import { api } from './api.js';
import { h, table, facts } from './dom.js';
import * as fmt from './format.js';
import type { CatalogItem, Dataset, DefaultModel, Hardware, Model, Run } from './api.js';

/** One line of a run's metrics.jsonl. */
interface MetricsRow {
  kind?: 'train' | 'eval';
  step: number;
  loss: number;
}

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
    ['Run', 'Status', 'Progress', 'Loss', 'Best check', 'Model', 'Started', 'Last update'],
    runs.map((r) => [
      `#${r.id}`,
      r.status,
      r.total_steps === null ? `${r.step} steps` : `${r.step} of ${r.total_steps} steps`,
      r.last_loss === null ? '–' : r.last_loss.toFixed(3),
      r.best_eval_loss === null ? '–' : `${r.best_eval_loss.toFixed(3)} at step ${r.best_step}`,
      `#${r.model_id}`,
      fmt.when(r.created_at),
      fmt.when(r.updated_at),
    ]),
    'runs-table',
  );
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag: string, attrs: Record<string, string>): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

/** Training loss (line) and validation loss (dots) against the step. */
function lossChart(rows: MetricsRow[]): Element {
  const train = rows.filter((r) => (r.kind ?? 'train') === 'train');
  const evals = rows.filter((r) => r.kind === 'eval');
  if (train.length === 0) return empty('run-chart-empty', 'No steps yet.');
  const [w, hgt, pad] = [560, 180, 28];
  const all = [...train, ...evals];
  const maxStep = Math.max(...all.map((r) => r.step), 1);
  const lo = Math.min(...all.map((r) => r.loss));
  const hi = Math.max(...all.map((r) => r.loss));
  const x = (s: number) => pad + ((w - 2 * pad) * s) / maxStep;
  const y = (l: number) => hgt - pad - ((hgt - 2 * pad) * (l - lo)) / (hi - lo || 1);
  const chart = svg('svg', { viewBox: `0 0 ${w} ${hgt}`, class: 'chart', role: 'img', 'data-testid': 'run-chart' });
  chart.append(svg('polyline', { points: train.map((r) => `${x(r.step)},${y(r.loss)}`).join(' '), fill: 'none', stroke: 'currentColor', 'stroke-width': '1.5' }));
  for (const r of evals) chart.append(svg('circle', { cx: `${x(r.step)}`, cy: `${y(r.loss)}`, r: '3.5', fill: '#c0392b' }));
  const label = (text: string, lx: number, ly: number) => {
    const t = svg('text', { x: `${lx}`, y: `${ly}`, 'font-size': '11' });
    t.textContent = text;
    chart.append(t);
  };
  label(hi.toFixed(2), 0, pad - 4);
  label(lo.toFixed(2), 0, hgt - 4);
  label(`step ${maxStep}`, w - pad - 40, hgt - 4);
  const title = svg('title', {});
  title.textContent = `Training loss (line) and validation loss (red dots) over ${maxStep} steps`;
  chart.append(title);
  return chart;
}

/** A run with its live curve and buttons; refreshes itself every 2 s while the run is active. */
function runCard(run: Run): HTMLElement {
  const card = h('section', { class: 'card', 'data-testid': `run-${run.id}` });
  const refresh = async (): Promise<void> => {
    const [r, rows] = await Promise.all([api.get_run({ id: run.id }), api.run_metrics({ id: run.id }) as Promise<unknown> as Promise<MetricsRow[]>]);
    const act = (command: 'pause_run' | 'stop_run' | 'resume_run', label: string) => {
      const b = h('button', { type: 'button', 'data-testid': `run-${command}` }, label);
      b.addEventListener('click', () => void api[command]({ id: r.id }).then(refresh));
      return b;
    };
    const active = r.status === 'running' || r.status === 'queued';
    const buttons = active
      ? [act('pause_run', 'Pause'), act('stop_run', 'Stop')]
      : ['paused', 'stopped', 'interrupted', 'failed'].includes(r.status)
        ? [act('resume_run', 'Resume')]
        : [];
    card.replaceChildren(
      h('h3', {}, `Run #${r.id}: ${r.status}`),
      h('p', { class: 'muted' }, r.total_steps === null ? `${r.step} steps` : `Step ${r.step} of ${r.total_steps}`, r.error ? ` · ${r.error}` : ''),
      lossChart(rows),
      h('div', { class: 'actions' }, ...buttons),
    );
    if (active) {
      setTimeout(() => {
        if (card.isConnected) void refresh();
      }, 2000);
    }
  };
  void refresh();
  return card;
}

export const views: Record<string, View> = {
  home: {
    title: 'Home',
    async render() {
      const o = await api.overview();
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
      const [models, catalog] = await Promise.all([api.list_models(), api.catalog()]);
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
      const datasets = await api.list_datasets();
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
      const runs = await api.list_runs();
      return section(
        'Training runs',
        'runs-view',
        h('p', { class: 'lead' }, 'Each run fine-tunes a model on a dataset. Runs keep going when this window closes.'),
        runsTable(runs),
        ...runs.slice().reverse().slice(0, 5).map(runCard),
      );
    },
  },
};
