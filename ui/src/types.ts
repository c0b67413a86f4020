// Shapes of the data the backend returns (see crates/whetstone-api).

export interface Gpu {
  name: string;
  backend: string;
  vram_total_bytes: number;
  vram_free_bytes: number;
}

export interface Hardware {
  cpu_model: string;
  cpu_cores: number;
  cpu_physical_cores: number | null;
  ram_total_bytes: number;
  ram_available_bytes: number;
  gpus: Gpu[];
  /** Why a GPU backend found nothing (driver missing, library failed to load, ...). */
  gpu_notes: string[];
}

export interface DefaultModel {
  path: string;
  name: string;
  architecture: string;
  parameters: number;
  context_length: number | null;
  license: string | null;
  file_bytes: number;
}

export interface Model {
  id: number;
  name: string;
  source: string;
  location: string;
  architecture: string | null;
  parameters: number | null;
  license: string | null;
  commercial_use: boolean | null;
  added_at: string;
  path: string | null;
  repo_id: string | null;
  revision: string | null;
  context_length: number | null;
}

/** One entry of the curated catalog (`catalog` command). */
export interface CatalogItem {
  name: string;
  repo: string;
  parameters: number;
  architecture: string;
  context_length: number;
  license: string;
  commercial_use: boolean;
  gated: boolean;
  lora_targets: string;
  license_note?: string;
  installed_model_id: number | null;
}

export interface Dataset {
  id: number;
  name: string;
  source_path: string;
  rows: number;
  created_at: string;
}

export interface Run {
  id: number;
  model_id: number;
  dataset_id: number | null;
  status: string;
  out_dir: string;
  created_at: string;
  updated_at: string;
  pid: number | null;
  step: number;
  total_steps: number | null;
  last_loss: number | null;
  best_step: number | null;
  best_eval_loss: number | null;
  heartbeat_at: string | null;
  /** Why the run failed or was interrupted, in plain words. */
  error: string | null;
}

/** One line of a run's metrics.jsonl. */
export interface MetricsRow {
  kind?: 'train' | 'eval';
  step: number;
  loss: number;
}

export interface Overview {
  hardware: Hardware;
  models: Model[];
  datasets: Dataset[];
  runs: Run[];
  default_model: DefaultModel | null;
}
