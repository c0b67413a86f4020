// Generated from the Rust types by `crates/whetstone-api/src/bindings.rs`; do not edit.
// Regenerate: WHETSTONE_WRITE_BINDINGS=1 cargo test -p whetstone-api --test bindings_tests

/** How commands reach the backend: Tauri IPC in the window, HTTP against `whet serve`. */
export interface Transport {
  call<T>(command: string, args: object): Promise<T>;
}

export type AcceptResult = { dataset: Dataset, version: DatasetVersion, rows: number, };

export type AllowedFolder = { id: number, path: string, added_at: string, };

export type Alpha = { ordinal: number | null, nominal: number | null, note: string | null, };

export type AnswerEnd = "end" | "length" | "stopped";

export type Applied = { rows_before: number, exact_duplicates_removed: number, near_duplicates_removed: number, length_removed: number, boilerplate_removed: number, pii_rows_dropped: number, pii_redacted: number, pii_kept: number, rows_after: number, };

export type ApplyResult = { dataset: Dataset, version: DatasetVersion, summary: QueueSummary, 
/**
 * Model-written rows added (accepted and edited).
 */
added: number, 
/**
 * Rows of the version replaced by their edits (data review).
 */
changed: number, };

export type AugmentMode = "paraphrase" | { "rewrite": RewriteInstruction };

export type AugmentRequest = { 
/**
 * Dataset name or id.
 */
dataset: string, 
/**
 * The latest version when absent.
 */
version?: number, 
/**
 * 1-based positions of the rows to vary (as `data_rows` numbers them), at most 50.
 */
rows: Array<number>, mode: AugmentMode, 
/**
 * What to rewrite in a conversation: the question (the default for paraphrase) or the answer (the
 * default for rewrite). A plain-text row is rewritten whole.
 */
part?: RowPart, 
/**
 * Variations of each row, 1 to 10; at most 100 in all.
 */
per_row: number, 
/**
 * An installed model (id, name or hub id) or a model file or folder; the bundled model when neither
 * this nor `run` is given.
 */
model?: string, 
/**
 * A finished run: its base model with its tuned adapter writes the variations.
 */
run?: number, 
/**
 * 0 writes the one most likely text; higher varies more (default 0.8, at most 2).
 */
temperature?: number, 
/**
 * Each variation samples from `seed` plus its place in the queue, so the same request writes the same rows.
 */
seed?: number, 
/**
 * The longest variation, in tokens (default 256).
 */
max_new_tokens?: number, };

export type BaseFormat = "f32" | "bf16" | "f16" | "nf4" | "q8_0" | "q6_k" | "q5_k" | "q4_k" | "q4_1" | "q4_0";

export type Best = { step: number, eval_loss: number, };

export type Bin = { 
/**
 * Inclusive lower bound in tokens.
 */
from: number, 
/**
 * Exclusive upper bound; `None` for the last, open bin.
 */
to: number | null, rows: number, };

export type CancelPull = { 
/**
 * The repo id the pull was started with.
 */
repo: string, };

export type CancelledPull = { repo: string, cancelled: boolean, };

export type CatalogItem = { installed_model_id: number | null, name: string, 
/**
 * Hub repo id, `org/name`.
 */
repo: string, parameters: number, 
/**
 * `llama`, `mistral` or `qwen2`: the families the engine trains.
 */
architecture: string, 
/**
 * Longest context the model was trained for, in tokens.
 */
context_length: number, 
/**
 * The license's short name as the hub spells it.
 */
license: string, 
/**
 * Whether the license lets a business use the model or what it writes.
 */
commercial_use: boolean, 
/**
 * The hub asks users to accept the license (and sign in) before downloading.
 */
gated: boolean, 
/**
 * Layers that get adapters by default, in the engine's short names.
 */
lora_targets: string, license_note?: string | null, shape: CatalogShape, };

export type CatalogShape = { hidden: number, intermediate: number, layers: number, heads: number, kv_heads: number, vocab: number, tied_embeddings: boolean, };

export type CheckedPrompt = { prompt: string, in_app: string, exported: string, same: boolean, };

export type CheckpointInfo = { step: number, path: string, 
/**
 * Its validation loss, when it is the best evaluation's.
 */
eval_loss: number | null, bytes: number, };

export type Choice = "a" | "b" | "tie";

export type CleanOptions = { 
/**
 * Remove exact duplicates (same text after whitespace and case normalisation).
 */
exact: boolean, 
/**
 * Remove near duplicates at this estimated Jaccard similarity of word 3-grams (0 < t ≤ 1).
 */
near: number | null, 
/**
 * Look for personal data.
 */
pii: boolean, 
/**
 * Remove rows with fewer characters than this.
 */
min_chars: number | null, 
/**
 * Remove rows with more characters than this.
 */
max_chars: number | null, 
/**
 * Remove rows whose response is empty or boilerplate ("N/A", "As an AI language model…").
 */
boilerplate: boolean, };

export type CleanRequest = { 
/**
 * Dataset name or id.
 */
dataset: string, 
/**
 * The version to clean; the latest when absent.
 */
version: number | null, options: CleanOptions, 
/**
 * Without `apply` only the proposal is returned and nothing changes.
 */
apply: boolean, decisions: PiiDecisions, };

export type CleanResult = { dataset: string, base_version: number, proposal: Proposal, 
/**
 * Present once applied.
 */
applied: Applied | null, version: DatasetVersion | null, };

export type ConfigOpen = { 
/**
 * A .toml, .yaml/.yml or .json file.
 */
path: string, };

export type ConfigOpened = { path: string, format: Format, 
/**
 * Every setting: the file's, and the defaults for those it leaves out.
 */
settings: TrainSettings, 
/**
 * What in the file was understood but not used here, one sentence each.
 */
warnings: Array<string>, };

export type ConfigSave = { 
/**
 * Where to write; the extension (.toml, .yaml/.yml, .json) decides the format.
 */
path: string, settings: TrainSettings, 
/**
 * Replace a file that is already there; without it an existing file is refused.
 */
overwrite: boolean, };

export type ConfigSaved = { path: string, format: Format, 
/**
 * Whether a file was there and has been replaced.
 */
replaced: boolean, };

export type Criterion = { key: string, label: string, description: string, 
/**
 * Added by the organiser for this session.
 */
custom: boolean, };

export type CriterionInput = { label: string, description?: string, };

export type CriterionResult = { key: string, label: string, baseline: Estimate | null, candidate: Estimate | null, 
/**
 * Over each answer (item and side) as the unit.
 */
agreement: Alpha, };

export type CudaDriver = { 
/**
 * The newest CUDA version the driver runs.
 */
cuda: CudaVersion, 
/**
 * `13.0`-style text of the same.
 */
cuda_text: string, 
/**
 * The driver's own version (`580.65.06`), where the system shows it.
 */
driver_version: string | null, };

export type CudaVersion = number;

export type DataStats = { dataset: string, version: number, model: string, 
/**
 * True when the model has no chat template and the documented ChatML fallback was used.
 */
fallback_template: boolean, splits: SplitCounts | null, tokens: TokenStats, };

export type Dataset = { id: number, name: string, source_path: string, 
/**
 * Lowercase hex SHA-256 of the source file when it was imported.
 */
source_sha256: string, rows: number, created_at: string, };

export type DatasetArgs = { 
/**
 * A dataset's name or id.
 */
dataset: string, };

export type DatasetLengths = { examples: number, mean_tokens: number, p95_tokens: number, max_tokens: number, 
/**
 * Examples longer than `max-len`, which training cuts.
 */
truncated: number, 
/**
 * Examples with no answer token within `max-len`, which training leaves out (and reports).
 */
dropped: number, 
/**
 * The smallest `max-len` at which no example is left out.
 */
length_keeping_all: number, };

export type DatasetVersion = { id: number, dataset_id: number, version: number, parent: number | null, 
/**
 * The steps that made this version from its parent, each with its parameters and counts.
 */
steps: JsonValue, rows_path: string, rows: number, created_at: string, };

export type DecideRequest = { queue: number, 
/**
 * The item's number in the queue, from 1.
 */
item: number, decision: Decision, };

export type Decision = "accept" | { "edit": EditRow } | "reject" | { "flag": FlagNote };

export type DecisionKind = "accept" | "edit" | "reject" | "flag";

export type DefaultModel = { path: string, 
/**
 * The file name without `.gguf`: GGUF `general.name` is often a training-run label.
 */
name: string, architecture: string, 
/**
 * Sum of the element counts of every tensor in the file.
 */
parameters: number, context_length: number | null, 
/**
 * SPDX id from `general.license`; `None` when the file does not say.
 */
license: string | null, file_bytes: number, };

export type DefaultsRequest = { 
/**
 * Training examples (rows of the train split); presets assume a small dataset when absent.
 */
examples: number | null, 
/**
 * Length in tokens that 95% of the examples fit in (from `data_stats`), to choose `max-len`.
 */
p95_tokens: number | null, };

export type DeviceChoice = string;

export type DeviceOption = { 
/**
 * What the `device` setting takes: `auto`, `cpu`, `cuda:0`, `metal`.
 */
value: DeviceChoice, label: string, 
/**
 * Where a run with this choice trains; `None` when it cannot.
 */
selection: Selection | null, 
/**
 * Why it cannot, in plain words.
 */
problem: string | null, };

export type Devices = { 
/**
 * Where `auto` trains now.
 */
auto: Selection, 
/**
 * `auto`, the processor, each NVIDIA GPU (or a generic `cuda` saying why there is none) and, on
 * a Mac, the Apple GPU.
 */
options: Array<DeviceOption>, 
/**
 * The GPU worker program, when this installation has one.
 */
cuda_worker: string | null, 
/**
 * The CUDA version the GPU worker needs from the driver (`13.0`).
 */
cuda_needed: string, 
/**
 * The NVIDIA driver's CUDA version, when a driver answered.
 */
cuda_driver: string | null, };

export type DisagreedItem = { item: number, prompt: string, ratings: number, 
/**
 * Mean over criteria and sides of the spread (highest less lowest) of the scores given.
 */
score_spread: number, 
/**
 * Whether raters chose differently between baseline, candidate and tie.
 */
preference_split: boolean, };

export type Discarded = { run: Run, deleted: Array<RunFile>, freed_bytes: number, 
/**
 * Entries of the folder that were not the run's and stay.
 */
kept: Array<string>, 
/**
 * The folder itself was removed (it held nothing else).
 */
folder_removed: boolean, };

export type DroppedRow = { 
/**
 * Line of the row in its file.
 */
line: number, 
/**
 * The row's length in tokens.
 */
tokens: number, 
/**
 * Position of its first trained token: a maximum length above this keeps the row.
 */
first_trained: number, };

export type DuplicateExample = { kept_line: number, removed_lines: Array<number>, kept: string, removed: string, };

export type DuplicateStep = { groups: number, removed: number, threshold: number | null, examples: Array<DuplicateExample>, };

export type EarlierSpeed = { run: number, 
/**
 * Median tokens per second over that run's steps (its first step, which warms up, left out).
 */
tokens_per_s: number, 
/**
 * This run's tokens at that speed.
 */
seconds: number, };

export type EditRequest = { 
/**
 * Dataset name or id.
 */
dataset: string, 
/**
 * The version the row numbers refer to. It must still be the latest: edits made on an older
 * version would silently undo what came after it.
 */
version: number, edits: Array<RowEdit>, 
/**
 * 1-based positions of the rows to leave out.
 */
deletes: Array<number>, };

export type EditResult = { dataset: string, base_version: number, 
/**
 * The new version; the one edited is left as it was.
 */
version: DatasetVersion, 
/**
 * Rows whose content changed (an edit that gives a row back as it was is not counted).
 */
changed: number, deleted: number, 
/**
 * The provenance line, e.g. "manual edit: 3 rows changed, 1 deleted".
 */
summary: string, 
/**
 * Rows in each split of the new version, when the dataset is split.
 */
splits: SplitCounts | null, };

export type EditRow = { 
/**
 * Any shape an import reads (`{"messages": […]}`, `{"prompt", "response"}`, `{"text"}`, …), checked the
 * way an import checks it.
 */
row: JsonValue, };

export type ErrorBody = { code: string, message: string, };

export type Estimate = { mean: number, low: number, high: number, n: number, };

export type EvalExportArgs = { id: number, format: TableFormat, };

export type EvalItem = { position: number, line: number | null, 
/**
 * The conversation the model answered (its last message is the prompt).
 */
messages: Array<Message>, prompt: string, input: JsonValue | null, reference: string | null, outputs: Array<EvalOutput>, };

export type EvalListArgs = { 
/**
 * Only the evaluations in which this run answered.
 */
run?: number, };

export type EvalMetrics = { step: number, 
/**
 * Mean loss over the validation set's response tokens.
 */
loss: number, perplexity: number, tokens: number, elapsed_s: number, };

export type EvalOutput = { side: Side, text: string, tokens: number, scores: ItemMetrics | null, };

export type EvalProgress = { stage: string, done: number, total: number, };

export type EvalRequest = { 
/**
 * A training run: its base model answers as `base`, with the run's adapter as `tuned`.
 */
run?: number, 
/**
 * Without a run: a model (a path, or an installed model's id or name)…
 */
model?: string, 
/**
 * …and an adapter folder (PEFT layout) for the `tuned` side.
 */
adapter?: string, quant?: QuantMode, 
/**
 * Another run answering the same prompts, as the `compare` side.
 */
compare_run?: number, 
/**
 * Rows from a dataset version (name or id; the latest version unless `version`), its `split`
 * (`test` by default).
 */
dataset?: string, version?: number, split?: string, 
/**
 * Rows from a file (any format `whet data import` reads).
 */
data?: string, 
/**
 * Rows given here.
 */
rows?: Array<EvalRowInput>, 
/**
 * Only the first N rows.
 */
limit?: number, 
/**
 * Which sides answer; by default base and tuned, and compare when `compare_run` is given.
 */
sides?: Array<Side>, 
/**
 * 0 (the default) decodes greedily; above 0 samples, seeded per item from `seed`.
 */
temperature?: number, top_p?: number, seed?: number, max_new_tokens?: number, 
/**
 * Longest prompt + reference measured for perplexity, in tokens.
 */
max_len?: number, 
/**
 * The references are labels (one category per item, such as `positive`): each side also gets
 * precision, recall and F1 per label, comparing its answers and the references with surrounding
 * white space trimmed.
 */
labels?: boolean, };

export type EvalResults = { evaluation: Evaluation, items: Array<EvalItem>, };

export type EvalRowInput = { prompt: string, system?: string, 
/**
 * Structured input shown to reviewers beside the prompt (the model sees only the prompt).
 */
input?: JsonValue, 
/**
 * The answer the outputs are scored against.
 */
reference?: string, };

export type Evaluation = { id: number, run_id: number | null, compare_run_id: number | null, model: string, adapter: string | null, dataset_id: number | null, dataset_version: number | null, split: string | null, 
/**
 * Where the rows came from, in words.
 */
source: string, 
/**
 * Decoding and measuring settings as used.
 */
settings: JsonValue, sides: Array<SideMetrics>, items: number, created_at: string, };

export type Event = { "type": "started", total_steps: number, examples: number, val_examples: number, trainable_parameters: number, 
/**
 * The checkpoint step the run continues from.
 */
resumed_from: number | null, micro_batch: number, grad_accum: number, } | { "type": "step", metrics: StepMetrics, total_steps: number, 
/**
 * Estimated seconds to the last step, from this session's pace.
 */
eta_s: number, 
/**
 * Memory the training holds: on a GPU the bytes its tensors hold in GPU memory, else the
 * training process's resident memory.
 */
memory_bytes: number | null, } | { "type": "eval", metrics: EvalMetrics, 
/**
 * The lowest validation loss so far.
 */
best: boolean, } | { "type": "checkpoint", step: number, path: string, } | { "type": "warning", code: string, message: string, step: number, } | { "type": "saved", adapter: string, } | { "type": "phase_started", phase: Phase, } | { "type": "phase_done", phase: Phase, seconds: number, };

export type EventsArgs = { id: number, 
/**
 * Byte offset in the run's event log: the `next` of the previous answer, 0 at first.
 */
since?: number, };

export type ExportFormat = "peft" | "merged" | "gguf" | "ollama" | "axolotl";

export type ExportRequest = { dataset: string, version: number | null, out: string, split: string | null, 
/**
 * Replace `out` when it exists; without it an existing file is refused.
 */
overwrite: boolean, };

export type ExportResult = { path: string, rows: number, version: number, };

export type FileProgress = { file: string, file_bytes: number, file_total: number | null, 
/**
 * Over all files of the pull.
 */
bytes: number, total_bytes: number, 
/**
 * Bytes per second fetched in this pull (cached and resumed bytes excluded).
 */
rate: number, eta_s: number | null, 
/**
 * `download`, `verify`, `cached` or `done`.
 */
phase: string, };

export type FilterStep = { removed: number, examples: Array<FilteredRow>, };

export type FilteredRow = { line: number, reason: string, excerpt: string, };

export type Fit = "fits" | "tight" | "does_not_fit";

export type FlagCount = { flag: string, baseline: number, candidate: number, };

export type FlagNote = { 
/**
 * What is wrong with the row, for whoever fixes it.
 */
note: string, };

export type FlaggedRow = { item: number, 
/**
 * 1-based position in the queue's version (and in the version applying makes).
 */
row: number, note: string, };

export type FolderArgs = { 
/**
 * A folder the app may read and write from now on (or no longer).
 */
path: string, };

export type Format = "toml" | "yaml" | "json";

export type GgufQuant = "f16" | "q8_0" | "q4_k_m";

export type GgufSummary = { tensors: number, 
/**
 * `(block type, tensor count)`, e.g. `("q4k", 60)`.
 */
types: Array<[string, number]>, bytes: number, };

export type Gpu = { name: string, 
/**
 * `"cuda"` or `"metal"`.
 */
backend: string, vram_total_bytes: number, vram_free_bytes: number, };

export type GroupResults = { kind: RaterKind, raters: number, ratings: number, criteria: Array<CriterionResult>, preference: PreferenceResult, flags: Array<FlagCount>, };

export type Hardware = { cpu_model: string, 
/**
 * Logical cores this process may run on (affinity and cgroup quotas applied).
 */
cpu_cores: number, 
/**
 * `None` where the OS does not say.
 */
cpu_physical_cores: number | null, 
/**
 * Physical RAM, or the cgroup memory limit when that is smaller.
 */
ram_total_bytes: number, ram_available_bytes: number, gpus: Array<Gpu>, 
/**
 * Why a GPU backend found nothing (driver missing, library failed to load, ...).
 */
gpu_notes: Array<string>, 
/**
 * The NVIDIA driver's CUDA version, when a driver answered.
 */
cuda_driver: CudaDriver | null, };

export type HubModel = { id: string, downloads: number | null, likes: number | null, license: string | null, 
/**
 * From the license's terms where Whetstone knows them, else `None`.
 */
commercial_use: boolean | null, gated: boolean, parameters: number | null, 
/**
 * Sum of the repo's file sizes, when the hub lists them.
 */
size_bytes: number | null, pipeline_tag: string | null, 
/**
 * Whether the catalog lists this repo.
 */
in_catalog: boolean, };

export type IdArgs = { id: number, };

export type ImportReport = { path: string, format: SourceFormat, 
/**
 * The most common shape among accepted rows.
 */
shape: string | null, shapes: { [key in string]: number }, 
/**
 * Records read (blank lines are not records).
 */
rows: number, accepted: number, rejected: number, 
/**
 * The first [`MAX_REPORTED_REJECTIONS`] rejections, in file order.
 */
rejections: Array<Rejection>, source_sha256: string, source_bytes: number, };

export type ImportRequest = { path: string, 
/**
 * Defaults to the file name without its extension.
 */
name: string | null, 
/**
 * `field=column` renames, e.g. `prompt=question`.
 */
map: Array<string>, 
/**
 * jsonl, json, csv, tsv or text; detected from the file when absent.
 */
format: string | null, max_row_bytes: number | null, };

export type ImportResult = { dataset: Dataset, version: DatasetVersion, report: ImportReport, 
/**
 * Every rejected record (the report lists only the first ones), one JSON object per line.
 */
rejections_file: string | null, };

export type Invitation = { rater: RaterStatus, token: string, };

export type ItemMetrics = { 
/**
 * Sentence BLEU, 0..100.
 */
bleu: number, 
/**
 * Sentence chrF, 0..100.
 */
chrf: number, rouge1: number, rouge2: number, rouge_l: number, rouge_lsum: number, meteor: number, exact_match: number, f1: number, };

export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null;

export type JudgeFailure = { item: number, reason: string, 
/**
 * The beginning of what the model wrote last for this item (empty when nothing was generated).
 */
output: string, };

export type JudgeRequest = { 
/**
 * The review session whose items are rated.
 */
session: number, 
/**
 * The judging model: an installed model's id, name or hub id, or a model file or folder…
 */
model?: string, 
/**
 * …or a run's model: its base model, or with `tuned` the base model with the run's adapter.
 */
run?: number, tuned?: boolean, 
/**
 * Instructions that replace the built-in opening of the rubric prompt; the criteria, the item
 * and the form of the answer are always added after them.
 */
rubric?: string, 
/**
 * The judge's name among the session's raters; "Local judge (MODEL)" by default.
 */
name?: string, 
/**
 * At most this many items (the judge takes a place among each item's raters).
 */
max_items?: number, 
/**
 * Longest reply per item, in tokens.
 */
max_new_tokens?: number, };

export type JudgeSummary = { session: number, 
/**
 * The judge as the session's rater (kind `machine`).
 */
rater: RaterStatus, 
/**
 * Which model judged.
 */
judge: string, 
/**
 * Items in the judge's queue.
 */
queued: number, rated: number, 
/**
 * Of those rated, how many needed the reminder.
 */
retried: number, failed: Array<JudgeFailure>, 
/**
 * When some items failed, the judge's token is retired so that those items can go to another rater.
 */
returned_to_pool: boolean, };

export type LabelAverage = { precision: number, recall: number, f1: number, };

export type LabelMetric = { label: string, precision: number, recall: number, f1: number, 
/**
 * How many items' references carry this label.
 */
support: number, };

export type LabelMetrics = { per_label: Array<LabelMetric>, 
/**
 * Unweighted mean over labels.
 */
macro_avg: LabelAverage, 
/**
 * From the counts pooled over labels: the share of answers that are the right label.
 */
micro_avg: LabelAverage, 
/**
 * Mean over labels weighted by their support.
 */
weighted_avg: LabelAverage, };

export type LeakageReport = { threshold: number, 
/**
 * Groups of near-duplicate rows that fall in more than one split.
 */
groups: number, 
/**
 * Rows in such groups that are not in the group's first row's split.
 */
rows: number, examples: Array<LeakedPair>, };

export type LeakedPair = { line: number, split: Split, other_line: number, other_split: Split, similarity: number, };

export type LoggedEvent = { time: number, } & (Event | WorkerEvent);

export type MemoryBreakdown = { base_weights: number, adapters_and_optimizer: number, activations: number, logits: number, workspace: number, 
/**
 * The sum: the training step's peak.
 */
total: number, 
/**
 * Peak while loading the model, before training starts.
 */
load_peak: number, 
/**
 * `max(total, load_peak)`: what the process's high-water mark will be.
 */
peak: number, 
/**
 * When the peak happens; the breakdown is of that moment (logits are 0 when the peak is in a
 * block, after the loss's temporaries are gone).
 */
peak_phase: string, adapter_parameters: number, };

export type Message = { role: Role, content: string, };

export type Model = { id: number, name: string, source: ModelSource, 
/**
 * Hub repo id for `hub`, a filesystem path otherwise.
 */
location: string, architecture: string | null, parameters: number | null, license: string | null, 
/**
 * `None` when the license terms are not known.
 */
commercial_use: boolean | null, added_at: string, 
/**
 * The model folder or GGUF file on this machine.
 */
path: string | null, 
/**
 * Hub repo id, for models pulled from the hub (or imported from a hub cache folder).
 */
repo_id: string | null, 
/**
 * The commit the files were pulled at.
 */
revision: string | null, 
/**
 * `[{name, size, etag?, sha256?}]` of the files the model is made of.
 */
files: JsonValue | null, 
/**
 * SHA-256 of a single-file model (GGUF).
 */
sha256: string | null, context_length: number | null, };

export type ModelSource = "bundled" | "hub" | "local";

export type NextArgs = { token: string, 
/**
 * A given item of the rater's queue (to go back to one); the first unrated one when absent.
 */
item?: number, };

export type NoArgs = Record<symbol, never>;

export type Origins = { a: Side, b: Side, };

export type Outcome = "completed" | "early_stopped" | "interrupted" | "bad_steps";

export type OutputRating = { scores: { [key in string]: number }, flags: Array<string>, };

export type Overview = { hardware: Hardware, models: Array<Model>, datasets: Array<Dataset>, runs: Array<Run>, default_model: DefaultModel | null, 
/**
 * Where runs train on this computer, and with which worker.
 */
devices: Devices, };

export type PathArgs = { path: string, };

export type Phase = "loading_model" | "reading_data" | "first_step";

export type PiiDecision = "redact" | "drop" | "keep";

export type PiiDecisions = { default: PiiDecision | null, findings: { [key in string]: PiiDecision }, };

export type PiiFinding = { 
/**
 * `line:field:byte` — the row's source line, which text of the row (message index), and where in it.
 */
id: string, line: number, kind: PiiKind, 
/**
 * The text found.
 */
text: string, 
/**
 * The surrounding text.
 */
context: string, };

export type PiiKind = "email" | "credit_card" | "ssn" | "ip" | "phone" | "address";

export type PiiStep = { findings: number, rows: number, by_kind: { [key in PiiKind]?: number }, 
/**
 * The first [`MAX_LISTED_FINDINGS`] findings.
 */
listed: Array<PiiFinding>, };

export type Plan = { model: string, architecture: string, parameters: number, device: string, device_free_bytes: number, device_total_bytes: number, base: BaseFormat, seq_len: number, batch: number, grad_accum: number, dataset: DatasetLengths | null, memory: MemoryBreakdown, fit: Fit, fit_label: string, recommendations: Array<Recommendation>, notes: Array<string>, 
/**
 * How long the run would take; known when the data is given.
 */
time: TimeEstimate | null, };

export type PlanRequest = { 
/**
 * A model path, an installed model (id, name, hub id) or a catalog repo id.
 */
model: string, 
/**
 * A JSONL dataset: its real token lengths replace `max-len` as the sequence length.
 */
data: string | null, settings: TrainSettings, 
/**
 * `auto`, `cpu`, `cuda` / `cuda:N` (also `gpu` / `gpu:N`) or `metal`; the settings' `device`
 * when absent.
 */
device: string | null, 
/**
 * How the base is held (`f32`, `bf16`, `nf4`, `q4_k`…); what the engine does on the device
 * when absent.
 */
base: string | null, };

export type PlaygroundAnswer = { side: PlaygroundSide, 
/**
 * The answer decoded from all its tokens at once: what the streamed pieces add up to.
 */
text: string, tokens: number, 
/**
 * From the first forward pass (the prompt included) to the last token.
 */
seconds: number, tokens_per_s: number, end: AnswerEnd, };

export type PlaygroundEvent = { "type": "started", setup: PlaygroundSetup, } | { "type": "text", side: PlaygroundSide, text: string, replace: boolean, } | { "type": "done", answer: PlaygroundAnswer, };

export type PlaygroundRequest = { 
/**
 * The run whose base model and adapter answer.
 */
run: number, prompt: string, 
/**
 * 0 (the default) always takes the likeliest next token; higher values sample more freely.
 */
temperature?: number, 
/**
 * Longest answer, in tokens.
 */
max_new_tokens?: number, 
/**
 * Sample only among the likeliest tokens whose probabilities add up to this (1 keeps all).
 */
top_p?: number, 
/**
 * Seed of the sampling, the same for both sides; drawn at random when absent (and reported).
 */
seed?: number, };

export type PlaygroundResult = { setup: PlaygroundSetup, base: PlaygroundAnswer, tuned: PlaygroundAnswer, };

export type PlaygroundSetup = { run: number, 
/**
 * The base model's path.
 */
model: string, adapter: string, 
/**
 * The prompt's length in tokens once the chat template is applied.
 */
prompt_tokens: number, temperature: number, top_p: number, max_new_tokens: number, seed: number, 
/**
 * The model brings no chat template of its own and a generic one was used.
 */
chat_template_fallback: boolean, 
/**
 * The models were already in memory from an earlier request.
 */
reused: boolean, };

export type PlaygroundSide = "base" | "tuned";

export type PreferenceResult = { candidate: number, baseline: number, tie: number, 
/**
 * How often the candidate is preferred, a tie counting half.
 */
candidate_win_rate: Estimate | null, 
/**
 * Over items, the preference coded baseline < tie < candidate.
 */
agreement: Alpha, };

export type Preset = { name: PresetName, label: string, 
/**
 * What the preset is for.
 */
summary: string, 
/**
 * How its numbers follow from the data and the hardware.
 */
reasons: Array<string>, settings: TrainSettings, };

export type PresetName = "quick_test" | "balanced" | "thorough";

export type Preview = { row: number, 
/**
 * The row's line in the imported file.
 */
line: number, split: Split | null, fallback_template: boolean, 
/**
 * The row as the model sees it, through its chat template.
 */
rendered: string, tokens: Array<PreviewToken>, trained_tokens: number, };

export type PreviewRequest = { dataset: string, version: number | null, 
/**
 * 1-based position of the row in the version.
 */
row: number, model: string | null, max_len: number | null, };

export type PreviewToken = { text: string, trained: boolean, };

export type Progress = { rated: number, total: number, 
/**
 * "N of M".
 */
text: string, };

export type Proposal = { rows_before: number, exact_duplicates: DuplicateStep | null, near_duplicates: DuplicateStep | null, length: FilterStep | null, boilerplate: FilterStep | null, pii: PiiStep | null, 
/**
 * Rows left if every removal is confirmed and personal data is redacted or kept (not dropped).
 */
rows_after_removals: number, };

export type PullEvent = { "type": "progress" } & FileProgress | { "type": "done", model: Model, };

export type PullRequest = { 
/**
 * Hub repo id, `org/name`.
 */
repo: string, 
/**
 * Branch, tag or commit; `main` when absent.
 */
revision: string | null, 
/**
 * Only these files (e.g. one GGUF); config, tokenizer and safetensors weights when empty.
 */
files: Array<string>, 
/**
 * Access token for gated models; else `HF_TOKEN`, else the token `huggingface-cli login` saved.
 */
token: string | null, 
/**
 * Use only what is already downloaded.
 */
offline: boolean, };

export type QuantMode = "native" | "none" | "nf4";

export type QueueArgs = { queue: number, };

export type QueueEntry = { item: number, 
/**
 * Whether this rater has a current rating of it.
 */
rated: boolean, };

export type QueueInfo = { id: number, kind: QueueKind, dataset_id: number, dataset: string, 
/**
 * The version the rows come from; it never changes.
 */
version: number, 
/**
 * How the queue was made (model, mode, seed, sample size…).
 */
settings: JsonValue, items: number, 
/**
 * The version applying the queue made; the queue takes no more decisions then.
 */
applied_version: number | null, created_at: string, applied_at: string | null, };

export type QueueItemView = { item: number, 
/**
 * 1-based position of the source row in the queue's version.
 */
source_row: number, 
/**
 * The source row as the version holds it.
 */
source: RowView, 
/**
 * The row to decide on: what the model wrote (augmentation), or the source row itself (data review).
 */
row: RowView, 
/**
 * How the model wrote it; none for sampled rows.
 */
synthetic: Synthetic | null, 
/**
 * Why the row cannot be accepted as it is (edit or reject it).
 */
problem: string | null, decision: DecisionKind | null, 
/**
 * The row as edited.
 */
edited: RowView | null, note: string | null, decided_at: string | null, };

export type QueueItems = { queue: QueueInfo, items: Array<QueueItemView>, };

export type QueueKind = "augment" | "sample";

export type QueueSummary = { queue: QueueInfo, accepted: number, edited: number, rejected: number, flagged: number, undecided: number, 
/**
 * Rows drawn, for a data review.
 */
sample_size: number | null, 
/**
 * Flagged rows over the sample size (0 to 1), for a data review.
 */
share_flagged: number | null, flags: Array<FlaggedRow>, };

export type QueuesArgs = { 
/**
 * Only the queues of this dataset (name or id).
 */
dataset?: string, };

export type RaterArgs = { rater: number, };

export type RaterItem = { item: number, 
/**
 * The conversation before the answer (a system message, earlier turns), the last message being the prompt.
 */
messages: Array<Message>, prompt: string, input: JsonValue | null, a: string, b: string, 
/**
 * This rater's current rating of the item, if any.
 */
rating: RatingInput | null, origins: Origins | null, };

export type RaterKind = "human" | "machine";

export type RaterStatus = { id: number, name: string, kind: RaterKind, assigned: number, rated: number, 
/**
 * "N of M", as the rater sees it.
 */
progress: string, revoked: boolean, expired: boolean, expires_at: string | null, last_rated_at: string | null, };

export type RaterView = { session: string, rater: string, criteria: Array<Criterion>, flags: Array<string>, progress: Progress, closed: boolean, 
/**
 * The rater's whole queue, so a page can go back and forth between items.
 */
queue: Array<QueueEntry>, 
/**
 * None once every item of the queue is rated (and none was asked for).
 */
item: RaterItem | null, };

export type RatingInput = { a: OutputRating, b: OutputRating, preference: Choice | null, comment: string | null, 
/**
 * An ideal answer the rater wrote, which the organiser may accept into a dataset.
 */
edited: string | null, };

export type Recommendation = { 
/**
 * In plain words.
 */
change: string, 
/**
 * The settings with the change applied (kebab-case keys, as `whet train --config` reads).
 */
settings: TrainSettings, base: BaseFormat, peak_bytes: number, fit: Fit, 
/**
 * False where the engine cannot train this way yet (a 4-bit base).
 */
engine_supported: boolean, };

export type Rejection = { line: number, record: number, reason: string, };

export type ReviewAccept = { session: number, 
/**
 * The ratings whose edited responses are accepted (ids from the session's export or results).
 */
ratings: Array<number>, 
/**
 * The dataset that gets the new version; by default the one the evaluation's rows came from.
 */
dataset?: string, };

export type ReviewCreate = { 
/**
 * The evaluation whose answers are compared.
 */
evaluation: number, name?: string, 
/**
 * The sides compared; by default base against tuned (or compare against tuned when the base did not answer).
 */
baseline?: Side, candidate?: Side, 
/**
 * Criteria added to the built-in rubric.
 */
criteria?: Array<CriterionInput>, 
/**
 * How many raters each item goes to (K); 2 by default.
 */
raters_per_item?: number, 
/**
 * Seed of the A/B sides and queue orders; drawn at random when absent, and stored either way.
 */
seed?: number, };

export type ReviewExportArgs = { id: number, format: TableFormat, 
/**
 * Only this kind of rater; both when absent (each line says which).
 */
kind?: RaterKind, };

export type ReviewInvite = { session: number, 
/**
 * The rater's name as the organiser will see it.
 */
name: string, kind?: RaterKind, 
/**
 * The token stops working this many seconds from now.
 */
expires_in_s?: number, 
/**
 * At most this many items, to share a large session among several raters.
 */
max_items?: number, };

export type ReviewPreferencesArgs = { id: number, 
/**
 * Whose preferences; people's when absent.
 */
kind?: RaterKind, };

export type ReviewResults = { session: ReviewSessionInfo, human: GroupResults, machine: GroupResults, 
/**
 * People's ratings only.
 */
most_disagreed: Array<DisagreedItem>, };

export type ReviewSessionInfo = { id: number, evaluation_id: number, name: string, baseline: Side, candidate: Side, criteria: Array<Criterion>, flags: Array<string>, raters_per_item: number, items: number, seed: number, closed: boolean, created_at: string, closed_at: string | null, };

export type ReviewShare = { 
/**
 * The address it listens on.
 */
bind: string, 
/**
 * Other computers can reach it (it does not listen on loopback only).
 */
network: boolean, 
/**
 * Where raters open the review page, before their token: one per address of this computer that
 * it serves, the network ones first, e.g. `http://192.168.1.20:8788/review#token=`.
 */
links: Array<string>, };

export type ReviewStatus = { session: ReviewSessionInfo, raters: Array<RaterStatus>, 
/**
 * Items rated by as many raters as they go to.
 */
complete_items: number, 
/**
 * Items not yet in any active rater's queue.
 */
unassigned_items: number, ratings: number, };

export type RewriteInstruction = { 
/**
 * What to change, in the user's words: "friendlier, simpler".
 */
instruction: string, };

export type Role = "system" | "user" | "assistant";

export type RoundTrip = { 
/**
 * The exported file or folder that was loaded.
 */
checked: string, prompts: Array<CheckedPrompt>, 
/**
 * Perplexity on the same held-out rows' answers.
 */
in_app_perplexity: number, exported_perplexity: number, rows: number, 
/**
 * Largest difference of the next-token logits after the first prompt.
 */
max_logit_diff: number, 
/**
 * Whether both tokenize the prompts to the same ids.
 */
same_prompt_ids: boolean, };

export type RowEdit = { 
/**
 * 1-based position of the row in the version being edited (as `data_rows` numbers them).
 */
row: number, 
/**
 * The whole new row, in any shape an import reads: `{"messages": [{"role", "content"}, …]}`,
 * `{"text": …}`, `{"prompt": …, "response": …}` and the others. It is checked by the same
 * reader as an imported file's records.
 */
content: JsonValue, };

export type RowFailure = { line: number, reason: string, };

export type RowPart = "prompt" | "answer";

export type RowView = { 
/**
 * 1-based position of the row in the version (as `data_preview` takes it).
 */
row: number, 
/**
 * The row's line in the imported file.
 */
line: number, split: Split | null, 
/**
 * The conversation; empty for a plain-text row.
 */
messages: Array<Message>, 
/**
 * The text of a plain-text row.
 */
text: string | null, };

export type RowsPage = { dataset: string, version: number, 
/**
 * Rows in the version.
 */
total: number, rows: Array<RowView>, };

export type RowsRequest = { dataset: string, 
/**
 * The latest version when absent.
 */
version: number | null, 
/**
 * Rows to skip from the start.
 */
offset: number, 
/**
 * How many rows to return, at most 200.
 */
limit: number, };

export type Rubric = { criteria: Array<Criterion>, flags: Array<string>, };

export type Run = { id: number, model_id: number, dataset_id: number | null, 
/**
 * The training configuration as given when the run was created.
 */
config: JsonValue, status: RunStatus, out_dir: string, created_at: string, updated_at: string, 
/**
 * The worker process while one is at work.
 */
pid: number | null, step: number, total_steps: number | null, last_loss: number | null, best_step: number | null, best_eval_loss: number | null, 
/**
 * When the worker last reported.
 */
heartbeat_at: string | null, 
/**
 * Why the run failed or stopped early, in plain words.
 */
error: string | null, };

export type RunEvents = { events: Array<LoggedEvent>, 
/**
 * Pass this as `since` next time.
 */
next: number, run: Run, };

export type RunExport = { run: number, format: ExportFormat, 
/**
 * A new or empty folder; one that holds anything is refused unless `overwrite` is set.
 */
out: string, overwrite: boolean, 
/**
 * Merged weights' dtype: `f32`, `f16` or `bf16` (default f16).
 */
dtype: string | null, 
/**
 * GGUF block type: `f16`, `q8_0` or `q4_k_m` (default q8_0).
 */
quant: GgufQuant | null, 
/**
 * Skip re-running prompts through the exported model.
 */
skip_check: boolean, 
/**
 * Axolotl: how many nodes, GPUs per node, and how to spread the job.
 */
nodes: number | null, gpus_per_node: number | null, parallelism: string | null, 
/**
 * Axolotl: the address of node 0 when there is more than one node.
 */
main_process_ip: string | null, };

export type RunExportReport = { format: ExportFormat, out: string, 
/**
 * Files written, relative to `out`.
 */
files: Array<string>, gguf: GgufSummary | null, round_trip: RoundTrip | null, 
/**
 * Commands to use the export (e.g. `ollama create`).
 */
commands: Array<string>, warnings: Array<string>, };

export type RunFile = { path: string, 
/**
 * Its size, a folder's with everything in it.
 */
bytes: number, };

export type RunFiles = { run: number, folder: string, folder_exists: boolean, adapter: SavedAdapter | null, 
/**
 * The checkpoint of the lowest validation loss, kept whatever else is pruned.
 */
best: CheckpointInfo | null, 
/**
 * The newest checkpoint.
 */
last: CheckpointInfo | null, 
/**
 * Every checkpoint, newest first.
 */
checkpoints: Array<CheckpointInfo>, 
/**
 * The run's own files and folders: what discarding it deletes.
 */
own: Array<RunFile>, 
/**
 * Their size together: the space discarding frees.
 */
own_bytes: number, 
/**
 * Anything else in the folder, which discarding leaves where it is.
 */
others: Array<string>, };

export type RunSeries = { 
/**
 * Training loss, thinned: every point when there are few, else each bucket's min and max.
 */
train: Array<SeriesPoint>, eval: Array<SeriesPoint>, 
/**
 * How many points the full history holds.
 */
train_points: number, eval_points: number, 
/**
 * Byte offset in the run's event log taken before the history was read: following the run
 * from here misses no step (one may arrive twice; the later replaces the earlier).
 */
events_offset: number, 
/**
 * The newest training step and evaluation in the log before that offset, for the figures a
 * screen shows beside the curve (speed, memory, time left) before the next step arrives.
 */
latest_step: LoggedEvent | null, latest_eval: LoggedEvent | null, 
/**
 * The preparation stages of the newest session of the run (started and done), in order.
 */
phases: Array<LoggedEvent>, 
/**
 * The run's warnings, oldest first (at most the newest [`MAX_WARNINGS`]).
 */
warnings: Array<LoggedEvent>, };

export type RunStatus = "queued" | "running" | "paused" | "stopped" | "completed" | "failed" | "cancelled" | "interrupted" | "discarded";

export type RunSummary = { steps: number, total_steps: number, first_loss: number | null, last_loss: number | null, adapter: string, outcome: Outcome, 
/**
 * Why the run ended before its last step, in plain words.
 */
reason: string | null, best: Best | null, 
/**
 * The final adapter is the best evaluation's rather than the last step's.
 */
adapter_is_best: boolean, };

export type SampleRequest = { 
/**
 * Dataset name or id.
 */
dataset: string, 
/**
 * The latest version when absent.
 */
version?: number, 
/**
 * How many rows to check, from 1 to 1000 and at most the version's rows.
 */
size: number, 
/**
 * The same seed draws the same rows.
 */
seed?: number, };

export type SaveTable = { table: TableKind, 
/**
 * The evaluation's or the review session's id.
 */
id: number, format: TableFormat, 
/**
 * Only this kind of rater (review and preferences; see `review_export` and `review_preferences`).
 */
kind?: RaterKind, 
/**
 * A file name (saved in the home folder's `exports` folder) or a full path.
 */
out: string, 
/**
 * Replace `out` when it exists; without it an existing file is refused.
 */
overwrite: boolean, };

export type SavedAdapter = { path: string, 
/**
 * The step whose weights it holds, when the worker said.
 */
step: number | null, 
/**
 * It holds the best evaluation's weights rather than the last step's.
 */
best: boolean, bytes: number, };

export type SavedTable = { path: string, bytes: number, };

export type ScheduleKind = "constant" | "linear" | "cosine";

export type SearchArgs = { query: string, limit?: number, };

export type Selection = { 
/**
 * The device itself: `cpu`, `cuda:N` or `metal`.
 */
device: DeviceChoice, worker: WorkerKind, 
/**
 * In words: `NVIDIA H200 (GPU 0)`, `the processor`.
 */
label: string, 
/**
 * `bf16, adapters in f32` or `f32`.
 */
precision: string, 
/**
 * Under `auto` on the processor: why no GPU is used, when this computer has one or a driver.
 */
note: string | null, };

export type SeriesArgs = { id: number, 
/**
 * Most buckets per series (default 1000); each gives at most two points.
 */
buckets?: number, };

export type SeriesPoint = { step: number, loss: number, };

export type SettingDoc = { 
/**
 * The key as `whet train --config` and the API take it (`lora-r`).
 */
key: string, 
/**
 * The `whet train` flag.
 */
flag: string, label: string, 
/**
 * One line in plain words.
 */
help: string, kind: SettingKind, 
/**
 * The value may be left empty (`null`), which has the meaning `help` gives.
 */
optional: boolean, choices: Array<string>, 
/**
 * Values outside `min..=max` are refused.
 */
min: number | null, max: number | null, 
/**
 * Values outside `safe_min..=safe_max` train, with a warning.
 */
safe_min: number | null, safe_max: number | null, 
/**
 * The warning below `safe_min`.
 */
below: string | null, 
/**
 * The warning above `safe_max`.
 */
above: string | null, 
/**
 * Shown only under "Advanced" in the app.
 */
advanced: boolean, };

export type SettingKind = "integer" | "number" | "boolean" | "choice" | "text";

export type ShareRequest = { bind: string, };

export type Side = "base" | "tuned" | "compare";

export type SideMetrics = { side: Side, model: string, adapter: string | null, 
/**
 * Mean loss over the references' tokens (as `whet eval loss`), and its exponential.
 */
loss: number | null, perplexity: number | null, loss_tokens: number, 
/**
 * Items whose prompt and reference did not fit `max_len`, left out of the perplexity.
 */
loss_rows_dropped: number, generated_tokens: number, 
/**
 * None when no item has a reference.
 */
text: TextMetrics | null, 
/**
 * Per-label figures, when the evaluation was asked to treat the references as labels.
 */
labels: LabelMetrics | null, };

export type SourceFormat = "jsonl" | "json_array" | "csv" | "tsv" | "text";

export type Split = "train" | "val" | "test";

export type SplitCounts = { train: number, val: number, test: number, };

export type SplitRequest = { dataset: string, version: number | null, val: number, test: number, seed: number, leakage_threshold: number | null, };

export type SplitResult = { version: DatasetVersion, counts: SplitCounts, leakage: LeakageReport, };

export type StartRun = { model: string, 
/**
 * A data file, or an imported dataset's name (its latest version's train split).
 */
data: string, 
/**
 * Validation data: a file, or an imported dataset's name (its latest version's val split).
 */
val: string | null, 
/**
 * The run folder; by default a new folder under `<home>/runs`. A folder that holds anything is
 * refused unless `overwrite` is set.
 */
out: string | null, 
/**
 * Replace an earlier run's files in `out` (never a live run's; other files are left alone).
 */
overwrite: boolean, settings: TrainSettings, };

export type StatsRequest = { dataset: string, version: number | null, 
/**
 * A GGUF file or model folder; the bundled model when absent.
 */
model: string | null, max_len: number, 
/**
 * Only rows of this split (train, val, test).
 */
split: string | null, };

export type StepMetrics = { step: number, loss: number, lr: number, grad_norm: number, tokens: number, tokens_per_s: number, elapsed_s: number, epoch: number, };

export type SubmitArgs = { token: string, item: number, a?: OutputRating, b?: OutputRating, preference?: Choice, comment?: string, edited?: string, };

export type SubmitResult = { rating_id: number, 
/**
 * Whether an earlier rating of this item by this rater was replaced (it stays in the history).
 */
replaced: boolean, progress: Progress, };

export type Synthetic = { 
/**
 * 1-based position of the row it varies, in the queue's version.
 */
source_row: number, 
/**
 * `paraphrase` or `rewrite`.
 */
mode: string, 
/**
 * What the user asked for, with `rewrite`.
 */
instruction: string | null, 
/**
 * What was rewritten; a plain-text row is rewritten whole.
 */
part: RowPart | null, 
/**
 * The messages the model was given: its instructions and the prompt with the text to vary.
 */
system: string, prompt: string, model: string, adapter: string | null, run: number | null, seed: number, temperature: number, 
/**
 * Tokens the model wrote.
 */
tokens: number, };

export type TableFormat = "csv" | "jsonl";

export type TableKind = "evaluation" | "review" | "preferences";

export type TextMetrics = { items: number, 
/**
 * Corpus BLEU (sacrebleu's `corpus_bleu`), 0..100.
 */
bleu: number, 
/**
 * Corpus chrF, 0..100.
 */
chrf: number, 
/**
 * Means over items of the F-measures.
 */
rouge1: number, rouge2: number, rouge_l: number, rouge_lsum: number, meteor: number, 
/**
 * False when METEOR ran without WordNet, so without its synonym stage.
 */
meteor_synonyms: boolean, exact_match: number, f1: number, };

export type TimeEstimate = { 
/**
 * Optimizer steps the run will take.
 */
steps: number, 
/**
 * Tokens read per step: examples per step times their mean length (cut at `max-len`).
 */
tokens_per_step: number, 
/**
 * The model's arithmetic alone at the speed this computer just showed for matrix products of
 * the model's width: the run cannot be faster, and is slower by the work around the products.
 */
at_least_s: number, 
/**
 * Matrix-product speed measured on the training device, in floating-point operations per second.
 */
measured_flops: number, 
/**
 * From the speed of the latest earlier run of this model on this computer, when there is one.
 */
from_earlier_run: EarlierSpeed | null, };

export type TokenArgs = { 
/**
 * The rater's invite token.
 */
token: string, };

export type TokenStats = { rows: number, 
/**
 * Rows whose template rendering or tokenization failed (listed in `failures`).
 */
failed: number, failures: Array<RowFailure>, min: number, max: number, mean: number, median: number, p95: number, max_len: number, 
/**
 * Rows longer than `max_len`, which training cuts.
 */
truncated: number, 
/**
 * Tokens trained on over all rows, before truncation.
 */
trained_tokens: number, histogram: Array<Bin>, };

export type TrainDefaults = { 
/**
 * Every setting's default, as `whet train` uses it when nothing is given.
 */
defaults: TrainSettings, 
/**
 * Every setting, in the order a form shows them.
 */
fields: Array<SettingDoc>, presets: Array<Preset>, 
/**
 * The machine the presets were sized for, in words.
 */
hardware: string, };

export type TrainSettings = { 
/**
 * Optimizer steps; when absent, `epochs` passes over the data decide.
 */
steps: number | null, epochs: number, lr: number, 
/**
 * Examples per micro-batch.
 */
batch: number, "grad-accum": number, "max-len": number, "lora-r": number, "lora-alpha": number, "lora-dropout": number, targets: string, rslora: boolean, scheduler: ScheduleKind, warmup: number, 
/**
 * Warm-up as a share of the run's steps (the HF Trainer's `warmup_ratio`); used when `warmup` is 0.
 */
"warmup-ratio": number | null, seed: number, "grad-checkpoint": boolean, "weight-decay": number, "max-grad-norm": number, threads: number | null, 
/**
 * How the base's linear layers are held: `native` (a GGUF's own quantization; dense for
 * safetensors), `none` (dense) or `nf4` (QLoRA).
 */
quant: QuantMode, 
/**
 * Evaluate on the validation examples every this many steps (and at the last step); 0: only at the end.
 */
"eval-every": number, 
/**
 * Save a checkpoint every this many steps; 0: only when pausing or stopping.
 */
"save-every": number, 
/**
 * Newest checkpoints kept besides the best one.
 */
"keep-checkpoints": number, 
/**
 * Stop after this many evaluations without improvement; 0 turns early stopping off.
 */
patience: number, 
/**
 * How much lower the validation loss must be to count as an improvement.
 */
"min-delta": number, 
/**
 * End with the adapter of the best evaluation rather than the last step.
 */
"load-best-at-end": boolean, 
/**
 * Stop after this many steps in a row whose loss or gradient was not a finite number.
 */
"max-bad-steps": number, 
/**
 * Refuse a data file with rows that have no answer token within `max_len`, instead of leaving
 * those rows out (and reporting them).
 */
"strict-rows": boolean, 
/**
 * Fit long rows by cutting their prompt from its start, keeping the answer, instead of cutting
 * the end.
 */
"truncate-prompt": boolean, 
/**
 * Where to train: `auto` (the best this computer has), `cpu`, `cuda`, `cuda:N` or `metal`.
 */
device: DeviceChoice, };

export type Unshared = { stopped: boolean, };

export type UploadRequest = { 
/**
 * The file's name as the page knows it (`support.jsonl`); only a cleaned-up last part is used.
 */
name: string, 
/**
 * The file's whole text.
 */
text: string, };

export type Uploaded = { 
/**
 * Where the text was written: pass it to `data_import`.
 */
path: string, 
/**
 * The file name it was given in the imports folder.
 */
file_name: string, bytes: number, };

export type WorkerEvent = { "type": "status", status: RunStatus, pid: number, } | { "type": "device", device: string, description: string, } | { "type": "rows_dropped", data: string, max_len: number, rows: Array<DroppedRow>, 
/**
 * The same in plain words.
 */
message: string, } | { "type": "finished", status: RunStatus, summary: RunSummary | null, error: ErrorBody | null, };

export type WorkerKind = "cpu" | "cuda";

/** Every command of the API, as the command table in dispatch.rs declares it. */
export const COMMANDS = [
  "hardware",
  "overview",
  "default_model",
  "devices",
  "list_models",
  "get_model",
  "catalog",
  "search_models",
  "pull_model",
  "cancel_pull",
  "import_model",
  "plan",
  "train_defaults",
  "config_open",
  "config_save",
  "list_datasets",
  "get_dataset",
  "data_import",
  "data_versions",
  "data_clean",
  "data_split",
  "data_stats",
  "data_rows",
  "data_preview",
  "data_export",
  "data_edit",
  "data_upload",
  "augment_start",
  "data_sample",
  "data_queues",
  "queue_items",
  "queue_decide",
  "queue_summary",
  "queue_apply",
  "list_runs",
  "get_run",
  "start_run",
  "pause_run",
  "resume_run",
  "stop_run",
  "run_files",
  "discard_run",
  "run_events",
  "export_run",
  "run_metrics",
  "run_series",
  "run_metrics_csv",
  "eval_run",
  "playground",
  "list_evaluations",
  "eval_results",
  "eval_export",
  "review_rubric",
  "review_create",
  "review_sessions",
  "review_invite",
  "review_revoke",
  "review_status",
  "review_close",
  "review_results",
  "review_export",
  "review_preferences",
  "review_accept",
  "review_share",
  "review_unshare",
  "review_shared",
  "review_judge",
  "save_table",
  "review_next",
  "review_submit",
  "review_progress",
  "allowed_folders",
  "allow_folder",
  "forget_folder",
  "open_folder",
] as const;

export type CommandName = (typeof COMMANDS)[number];

/** One typed function per command over a transport (Tauri IPC or HTTP). */
export function commands(transport: Transport) {
  return {
    /** CPU, memory and GPUs of this machine. */
    hardware: (): Promise<Hardware> => transport.call<Hardware>('hardware', {}),
    /** Everything the start screen shows. */
    overview: (): Promise<Overview> => transport.call<Overview>('overview', {}),
    /** The bundled starter model, when its file is present. */
    default_model: (): Promise<DefaultModel | null> => transport.call<DefaultModel | null>('default_model', {}),
    /** Where runs can train on this computer (processor, each GPU), which worker trains there, and what `auto` picks. */
    devices: (): Promise<Devices> => transport.call<Devices>('devices', {}),
    /** Installed models. */
    list_models: (): Promise<Array<Model>> => transport.call<Array<Model>>('list_models', {}),
    /** One installed model. */
    get_model: (args: IdArgs): Promise<Model> => transport.call<Model>('get_model', args),
    /** Suggested models with license and commercial-use flag. */
    catalog: (): Promise<Array<CatalogItem>> => transport.call<Array<CatalogItem>>('catalog', {}),
    /** Hub search. */
    search_models: (args: SearchArgs): Promise<Array<HubModel>> => transport.call<Array<HubModel>>('search_models', args),
    /** Downloads a hub model into the shared cache and adds it. */
    pull_model: (args: PullRequest): Promise<Model> => transport.call<Model>('pull_model', args),
    /** Cancels a download started from a screen; what it fetched stays, and downloading again resumes it. */
    cancel_pull: (args: CancelPull): Promise<CancelledPull> => transport.call<CancelledPull>('cancel_pull', args),
    /** Adds a local model folder or GGUF file. */
    import_model: (args: PathArgs): Promise<Model> => transport.call<Model>('import_model', args),
    /** Predicts a job's peak memory, whether it fits, and how long it takes. */
    plan: (args: PlanRequest): Promise<Plan> => transport.call<Plan>('plan', args),
    /** Training defaults, every setting explained with its safe range, and presets for the data and this machine. */
    train_defaults: (args: DefaultsRequest): Promise<TrainDefaults> => transport.call<TrainDefaults>('train_defaults', args),
    /** Reads a settings file (TOML, YAML or JSON, as `whet train --config` takes it) over the defaults, with what in it was not used. */
    config_open: (args: ConfigOpen): Promise<ConfigOpened> => transport.call<ConfigOpened>('config_open', args),
    /** Writes settings to a file `whet train --config` reads back; an existing file only with `overwrite`. */
    config_save: (args: ConfigSave): Promise<ConfigSaved> => transport.call<ConfigSaved>('config_save', args),
    /** Imported datasets. */
    list_datasets: (): Promise<Array<Dataset>> => transport.call<Array<Dataset>>('list_datasets', {}),
    /** One dataset. */
    get_dataset: (args: IdArgs): Promise<Dataset> => transport.call<Dataset>('get_dataset', args),
    /** Imports a file as a new dataset. */
    data_import: (args: ImportRequest): Promise<ImportResult> => transport.call<ImportResult>('data_import', args),
    /** Every version of a dataset and the steps that made it. */
    data_versions: (args: DatasetArgs): Promise<Array<DatasetVersion>> => transport.call<Array<DatasetVersion>>('data_versions', args),
    /** Proposes a cleaning, or applies it as a new version. */
    data_clean: (args: CleanRequest): Promise<CleanResult> => transport.call<CleanResult>('data_clean', args),
    /** Splits a version into train, validation and test. */
    data_split: (args: SplitRequest): Promise<SplitResult> => transport.call<SplitResult>('data_split', args),
    /** Token lengths of a version's rows. */
    data_stats: (args: StatsRequest): Promise<DataStats> => transport.call<DataStats>('data_stats', args),
    /** A page of a version's rows, as conversations or texts. */
    data_rows: (args: RowsRequest): Promise<RowsPage> => transport.call<RowsPage>('data_rows', args),
    /** One row's tokens, with the trained ones marked. */
    data_preview: (args: PreviewRequest): Promise<Preview> => transport.call<Preview>('data_preview', args),
    /** Writes a version (or a split) as JSONL. */
    data_export: (args: ExportRequest): Promise<ExportResult> => transport.call<ExportResult>('data_export', args),
    /** Rows edited and deleted by hand, saved as a new version with what changed as its provenance. */
    data_edit: (args: EditRequest): Promise<EditResult> => transport.call<EditResult>('data_edit', args),
    /** Keeps a file's text, sent by a page that cannot give its path, in the home folder's imports folder under a fresh name. */
    data_upload: (args: UploadRequest): Promise<Uploaded> => transport.call<Uploaded>('data_upload', args),
    /** Variations of chosen rows written by a local model, into a review queue; none enters a version until accepted. */
    augment_start: (args: AugmentRequest): Promise<QueueItems> => transport.call<QueueItems>('augment_start', args),
    /** A random sample of a version's rows, into a review queue for experts to check before training. */
    data_sample: (args: SampleRequest): Promise<QueueItems> => transport.call<QueueItems>('data_sample', args),
    /** Review queues with their counts, newest first; those of one dataset when given. */
    data_queues: (args: QueuesArgs): Promise<Array<QueueSummary>> => transport.call<Array<QueueSummary>>('data_queues', args),
    /** A review queue's items: each row beside its source, how it was made, and what was decided. */
    queue_items: (args: QueueArgs): Promise<QueueItems> => transport.call<QueueItems>('queue_items', args),
    /** Accepts, edits, rejects or flags an item; a later decision replaces it until the queue is applied. */
    queue_decide: (args: DecideRequest): Promise<QueueItemView> => transport.call<QueueItemView>('queue_decide', args),
    /** A queue's counts, and for a data review the sample size and the share flagged. */
    queue_summary: (args: QueueArgs): Promise<QueueSummary> => transport.call<QueueSummary>('queue_summary', args),
    /** Makes the queue's new dataset version: accepted variations added, or the sample's edits applied. */
    queue_apply: (args: QueueArgs): Promise<ApplyResult> => transport.call<ApplyResult>('queue_apply', args),
    /** Training runs. */
    list_runs: (): Promise<Array<Run>> => transport.call<Array<Run>>('list_runs', {}),
    /** One run. */
    get_run: (args: IdArgs): Promise<Run> => transport.call<Run>('get_run', args),
    /** Starts a training run in a worker process. */
    start_run: (args: StartRun): Promise<Run> => transport.call<Run>('start_run', args),
    /** Checkpoints a run and stops its worker. */
    pause_run: (args: IdArgs): Promise<Run> => transport.call<Run>('pause_run', args),
    /** Continues a run from its last good checkpoint. */
    resume_run: (args: IdArgs): Promise<Run> => transport.call<Run>('resume_run', args),
    /** Checkpoints a run, saves its adapter and ends it. */
    stop_run: (args: IdArgs): Promise<Run> => transport.call<Run>('stop_run', args),
    /** Where a run's adapter and best and last checkpoints are, and what discarding it would delete. */
    run_files: (args: IdArgs): Promise<RunFiles> => transport.call<RunFiles>('run_files', args),
    /** Stops a run, deletes its own files (never exports or anything else) and marks it discarded. */
    discard_run: (args: IdArgs): Promise<Discarded> => transport.call<Discarded>('discard_run', args),
    /** A run's events since a byte offset of its log. */
    run_events: (args: EventsArgs): Promise<RunEvents> => transport.call<RunEvents>('run_events', args),
    /** Exports a finished run: PEFT adapter, merged weights, GGUF, Ollama or an Axolotl job. */
    export_run: (args: RunExport): Promise<RunExportReport> => transport.call<RunExportReport>('export_run', args),
    /** A run's metrics, one row per step and evaluation. */
    run_metrics: (args: IdArgs): Promise<Array<JsonValue>> => transport.call<Array<JsonValue>>('run_metrics', args),
    /** A run's loss curve thinned for drawing (each bucket's lowest and highest point), and where to follow it from. */
    run_series: (args: SeriesArgs): Promise<RunSeries> => transport.call<RunSeries>('run_series', args),
    /** A run's metrics as CSV text. */
    run_metrics_csv: (args: IdArgs): Promise<string> => transport.call<string>('run_metrics_csv', args),
    /** Answers held-out prompts with the base model, the tuned one and optionally another run, and scores them. */
    eval_run: (args: EvalRequest): Promise<Evaluation> => transport.call<Evaluation>('eval_run', args),
    /** One prompt answered by a run's base model and by the tuned one, both whole (the window and the browser stream them instead). */
    playground: (args: PlaygroundRequest): Promise<PlaygroundResult> => transport.call<PlaygroundResult>('playground', args),
    /** Evaluations, newest first; those of one run when `run` is given. */
    list_evaluations: (args: EvalListArgs): Promise<Array<Evaluation>> => transport.call<Array<Evaluation>>('list_evaluations', args),
    /** One evaluation with every item's prompt, reference, answers and scores. */
    eval_results: (args: IdArgs): Promise<EvalResults> => transport.call<EvalResults>('eval_results', args),
    /** An evaluation's answers as CSV (one line per item and side) or JSON lines (one per item). */
    eval_export: (args: EvalExportArgs): Promise<string> => transport.call<string>('eval_export', args),
    /** The criteria every review session starts with, and the flags raters can set. */
    review_rubric: (): Promise<Rubric> => transport.call<Rubric>('review_rubric', {}),
    /** Starts a blind review of an evaluation: rubric, raters per item, the seed of the A/B draws. */
    review_create: (args: ReviewCreate): Promise<ReviewSessionInfo> => transport.call<ReviewSessionInfo>('review_create', args),
    /** Review sessions, newest first. */
    review_sessions: (): Promise<Array<ReviewSessionInfo>> => transport.call<Array<ReviewSessionInfo>>('review_sessions', {}),
    /** Invites a named rater: a random token, shown once, and a queue of items. */
    review_invite: (args: ReviewInvite): Promise<Invitation> => transport.call<Invitation>('review_invite', args),
    /** Revokes a rater's token; their unrated items return to the pool. */
    review_revoke: (args: RaterArgs): Promise<RaterStatus> => transport.call<RaterStatus>('review_revoke', args),
    /** Who rated what: progress per rater. */
    review_status: (args: IdArgs): Promise<ReviewStatus> => transport.call<ReviewStatus>('review_status', args),
    /** Closes a session: no more ratings, and raters may see which model wrote which answer. */
    review_close: (args: IdArgs): Promise<ReviewSessionInfo> => transport.call<ReviewSessionInfo>('review_close', args),
    /** Means with intervals, win rate, agreement and disputed items; people and machines apart. */
    review_results: (args: IdArgs): Promise<ReviewResults> => transport.call<ReviewResults>('review_results', args),
    /** Every current rating with the sides named, as CSV or JSON lines. */
    review_export: (args: ReviewExportArgs): Promise<string> => transport.call<string>('review_export', args),
    /** Preference pairs (prompt, chosen, rejected) as JSON lines for preference tuning. */
    review_preferences: (args: ReviewPreferencesArgs): Promise<string> => transport.call<string>('review_preferences', args),
    /** Accepted edited responses as a new dataset version with provenance "review". */
    review_accept: (args: ReviewAccept): Promise<AcceptResult> => transport.call<AcceptResult>('review_accept', args),
    /** Serves the review pages to raters on other computers, on an address given in full; with the links raters open. */
    review_share: (args: ShareRequest): Promise<ReviewShare> => transport.call<ReviewShare>('review_share', args),
    /** Stops serving the review pages. */
    review_unshare: (): Promise<Unshared> => transport.call<Unshared>('review_unshare', {}),
    /** Where the review pages are served now, if anywhere. */
    review_shared: (): Promise<ReviewShare | null> => transport.call<ReviewShare | null>('review_shared', {}),
    /** Rates a session's items with a local model and a rubric prompt, as a machine rater kept apart from people. */
    review_judge: (args: JudgeRequest): Promise<JudgeSummary> => transport.call<JudgeSummary>('review_judge', args),
    /** Saves an evaluation's answers, a review's ratings or its preference pairs into a file (a bare name: the home folder's exports folder). */
    save_table: (args: SaveTable): Promise<SavedTable> => transport.call<SavedTable>('save_table', args),
    /** A rater's next item (or a given one of their queue), the two answers as A and B. */
    review_next: (args: NextArgs): Promise<RaterView> => transport.call<RaterView>('review_next', args),
    /** A rater's rating of an item of their queue; a later one replaces it and keeps it as history. */
    review_submit: (args: SubmitArgs): Promise<SubmitResult> => transport.call<SubmitResult>('review_submit', args),
    /** A rater's progress, "N of M". */
    review_progress: (args: TokenArgs): Promise<Progress> => transport.call<Progress>('review_progress', args),
    /** Folders the app may read and write besides its home folder. */
    allowed_folders: (): Promise<Array<AllowedFolder>> => transport.call<Array<AllowedFolder>>('allowed_folders', {}),
    /** Lets the app read and write a folder (the window's file picker does this for what the user picks). */
    allow_folder: (args: FolderArgs): Promise<AllowedFolder> => transport.call<AllowedFolder>('allow_folder', args),
    /** Takes a folder off the allowed list. */
    forget_folder: (args: FolderArgs): Promise<AllowedFolder> => transport.call<AllowedFolder>('forget_folder', args),
    /** Shows a folder (an export, a run) in the system's file manager. */
    open_folder: (args: FolderArgs): Promise<string> => transport.call<string>('open_folder', args),
  };
}

export type Commands = ReturnType<typeof commands>;
