//! The command table: every command the app, the HTTP server and the UI can call, declared once.
//! From the one list below come [`COMMANDS`], the dispatcher that parses JSON arguments into typed
//! requests and calls the typed [`Api`] methods, and the UI's typed client functions
//! ([`crate::bindings`]). A command cannot be listed but not dispatched, or the other way round.

use crate::error::{Error, Result};
use crate::Api;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use crate::folders::Access;
use std::path::{Path, PathBuf};
use ts_rs::{TypeVisitor, TS};

/// Who can reach a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// The app's screens, in the window and through `whet serve`.
    App,
    /// The desktop window only: what a web page must never do (allow a folder, say).
    Window,
    /// A rater with an invite token: the review queue's own commands, the only ones `whet serve --review`
    /// serves. The app reaches them too.
    Rater,
}

/// Who is calling: decides which commands it reaches and whether its paths are confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Code in this process (the CLI, tests): every command, paths as given.
    Local,
    /// The desktop window: every command; paths confined to the home folder and allowed folders.
    Window,
    /// A page through `whet serve`: the app's commands; paths confined.
    Server,
    /// A rater through `whet serve --review`: the review queue's commands only.
    Reviewer,
}

impl Caller {
    fn reaches(self, reach: Reach) -> bool {
        match (self, reach) {
            (Caller::Local | Caller::Window, _) => true,
            (Caller::Server, Reach::App | Reach::Rater) => true,
            (Caller::Server, Reach::Window) => false,
            (Caller::Reviewer, Reach::Rater) => true,
            (Caller::Reviewer, Reach::App | Reach::Window) => false,
        }
    }
}

/// Whether `command` is one a rater reaches with an invite token.
pub fn is_rater_command(command: &str) -> bool {
    self::command(command).is_some_and(|c| c.reach == Reach::Rater)
}

/// Arguments that name files: callers from outside this process may only point them into the home
/// folder and the folders the user allowed. Types without paths keep the default.
pub trait Confine {
    fn confine(&mut self, _api: &Api) -> Result<()> {
        Ok(())
    }
}

impl Confine for NoArgs {}
impl Confine for crate::sharing::ShareRequest {}
impl Confine for IdArgs {}
impl Confine for DatasetArgs {}
impl Confine for EventsArgs {}
impl Confine for crate::series::SeriesArgs {}
impl Confine for SearchArgs {}
impl Confine for crate::models::PullRequest {}
impl Confine for crate::pulls::CancelPull {}
impl Confine for crate::datasets::CleanRequest {}
impl Confine for crate::datasets::SplitRequest {}
impl Confine for crate::datasets::RowsRequest {}
impl Confine for crate::defaults::DefaultsRequest {}
impl Confine for crate::datasets::EditRequest {}
// Written only into the home folder's imports folder, under a name cleaned of any path.
impl Confine for crate::uploads::UploadRequest {}

impl Confine for crate::settings_files::ConfigOpen {
    fn confine(&mut self, api: &Api) -> Result<()> {
        self.path = api.confine(&self.path, Access::Read)?;
        Ok(())
    }
}

impl Confine for crate::settings_files::ConfigSave {
    fn confine(&mut self, api: &Api) -> Result<()> {
        self.path = api.confine(&self.path, Access::Write)?;
        Ok(())
    }
}

impl Confine for PathArgs {
    fn confine(&mut self, api: &Api) -> Result<()> {
        self.path = api.confine(&self.path, Access::Read)?;
        Ok(())
    }
}

impl Confine for FolderArgs {}
impl Confine for EvalListArgs {}
impl Confine for crate::review::ReviewCreate {}
impl Confine for crate::review::ReviewInvite {}
impl Confine for crate::review::RaterArgs {}
impl Confine for crate::review::TokenArgs {}
impl Confine for crate::review::NextArgs {}
impl Confine for crate::review::SubmitArgs {}
impl Confine for crate::review_results::ReviewExportArgs {}
impl Confine for crate::review_results::ReviewPreferencesArgs {}
impl Confine for crate::review_results::ReviewAccept {}
impl Confine for EvalExportArgs {}
impl Confine for crate::playground::PlaygroundRequest {}
impl Confine for crate::queue::SampleRequest {}
impl Confine for crate::queue::QueueArgs {}
impl Confine for crate::queue::QueuesArgs {}
impl Confine for crate::queue::DecideRequest {}

impl Confine for crate::augment::AugmentRequest {
    fn confine(&mut self, api: &Api) -> Result<()> {
        if let Some(m) = &self.model {
            self.model = Some(api.confine_model_ref(m)?);
        }
        Ok(())
    }
}

impl Confine for crate::judge::JudgeRequest {
    fn confine(&mut self, api: &Api) -> Result<()> {
        if let Some(m) = &self.model {
            self.model = Some(api.confine_model_ref(m)?);
        }
        Ok(())
    }
}

impl Confine for crate::tables::SaveTable {
    fn confine(&mut self, api: &Api) -> Result<()> {
        // A bare file name is saved in the home folder's exports folder, which is always allowed.
        if crate::tables::bare_name(&self.out).is_none() {
            self.out = api.confine(&self.out, Access::Write)?;
        }
        Ok(())
    }
}

impl Confine for crate::evaluation::EvalRequest {
    fn confine(&mut self, api: &Api) -> Result<()> {
        if let Some(m) = &self.model {
            self.model = Some(api.confine_model_ref(m)?);
        }
        if let Some(a) = &self.adapter {
            self.adapter = Some(api.confine(a, Access::Read)?);
        }
        if let Some(d) = &self.data {
            self.data = Some(api.confine(d, Access::Read)?);
        }
        Ok(())
    }
}

impl Confine for crate::datasets::ImportRequest {
    fn confine(&mut self, api: &Api) -> Result<()> {
        self.path = api.confine(&self.path, Access::Read)?;
        Ok(())
    }
}

impl Confine for crate::datasets::ExportRequest {
    fn confine(&mut self, api: &Api) -> Result<()> {
        self.out = api.confine(&self.out, Access::Write)?;
        Ok(())
    }
}

impl Confine for crate::export_run::RunExport {
    fn confine(&mut self, api: &Api) -> Result<()> {
        self.out = api.confine(&self.out, Access::Write)?;
        Ok(())
    }
}

impl Confine for crate::datasets::StatsRequest {
    fn confine(&mut self, api: &Api) -> Result<()> {
        if let Some(m) = &self.model {
            self.model = Some(PathBuf::from(api.confine_model_ref(&m.to_string_lossy())?));
        }
        Ok(())
    }
}

impl Confine for crate::datasets::PreviewRequest {
    fn confine(&mut self, api: &Api) -> Result<()> {
        if let Some(m) = &self.model {
            self.model = Some(PathBuf::from(api.confine_model_ref(&m.to_string_lossy())?));
        }
        Ok(())
    }
}

impl Confine for crate::plan::PlanRequest {
    fn confine(&mut self, api: &Api) -> Result<()> {
        self.model = api.confine_model_ref(&self.model)?;
        if let Some(d) = &self.data {
            self.data = Some(api.confine_data_ref(d)?);
        }
        Ok(())
    }
}

impl Confine for crate::StartRun {
    fn confine(&mut self, api: &Api) -> Result<()> {
        self.model = PathBuf::from(api.confine_model_ref(&self.model.to_string_lossy())?);
        self.data = api.confine_data_ref(&self.data)?;
        if let Some(v) = &self.val {
            self.val = Some(api.confine_data_ref(v)?);
        }
        if let Some(o) = &self.out {
            self.out = Some(api.confine(o, Access::Write)?);
        }
        Ok(())
    }
}

impl Api {
    /// A model argument from outside: an installed model (id, name, hub id or its recorded place) or
    /// the bundled one stays as given; anything else is a path and must lie in an allowed folder.
    fn confine_model_ref(&self, spec: &str) -> Result<String> {
        let installed = !self.installed_models_named(spec)?.is_empty();
        let bundled = self.default_model_path.as_deref().is_some_and(|p| p == Path::new(spec));
        let catalog = !Path::new(spec).exists() && whetstone_hub::catalog::find(spec).is_some();
        if installed || bundled || catalog {
            return Ok(spec.to_string());
        }
        Ok(self.confine(Path::new(spec), Access::Read)?.display().to_string())
    }

    /// A data argument from outside: an imported dataset's name or id stays; a path must lie in an
    /// allowed folder.
    fn confine_data_ref(&self, spec: &Path) -> Result<PathBuf> {
        let imported = !spec.exists() && self.resolve_dataset(&spec.to_string_lossy()).is_ok();
        if imported {
            return Ok(spec.to_path_buf());
        }
        self.confine(spec, Access::Read)
    }
}

/// One entry of the command table.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Command {
    pub name: &'static str,
    pub reach: Reach,
    /// What it does, in the words of its declaration.
    pub doc: &'static str,
    /// TypeScript types of its arguments and its result (for the generated client).
    #[serde(skip)]
    pub(crate) ts: fn(&ts_rs::Config) -> (String, String),
    #[serde(skip)]
    pub(crate) visit: fn(&mut crate::bindings::Collector),
}

/// Arguments of a command that takes none.
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct IdArgs {
    pub id: i64,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct DatasetArgs {
    /// A dataset's name or id.
    pub dataset: String,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct EventsArgs {
    pub id: i64,
    /// Byte offset in the run's event log: the `next` of the previous answer, 0 at first.
    #[serde(default)]
    #[ts(optional)]
    pub since: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    pub query: String,
    #[serde(default)]
    #[ts(optional)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct PathArgs {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct FolderArgs {
    /// A folder the app may read and write from now on (or no longer).
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct EvalListArgs {
    /// Only the evaluations in which this run answered.
    #[serde(default)]
    #[ts(optional)]
    pub run: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct EvalExportArgs {
    pub id: i64,
    pub format: crate::evaluation::TableFormat,
}

/// Declares the commands. Each line: `name(Args) -> Result, reach, |api, args| call;` with a doc
/// comment that says what it does.
macro_rules! commands {
    ($( #[doc = $doc:literal] $name:ident ( $args:ty ) -> $ret:ty, $reach:ident, |$api:ident, $a:ident| $body:expr; )*) => {
        /// Every command, in the order a reader would look for them.
        pub const COMMANDS: &[Command] = &[$(
            Command {
                name: stringify!($name),
                reach: Reach::$reach,
                doc: $doc,
                ts: |cfg| (<$args as TS>::name(cfg), <$ret as TS>::name(cfg)),
                visit: |c| {
                    c.visit::<$args>();
                    c.visit::<$ret>();
                },
            },
        )*];

        impl Api {
            /// Runs the command named `name` with its JSON arguments, with `caller`'s paths confined.
            /// Callers have checked that the command is within their reach.
            fn run_command(&self, caller: Caller, name: &str, args: Value) -> Result<Value> {
                match name {
                    $(stringify!($name) => {
                        #[allow(unused_mut)]
                        let mut $a: $args = parse_args(name, args)?;
                        if caller != Caller::Local {
                            Confine::confine(&mut $a, self)?;
                        }
                        let $api = self;
                        let result: Result<$ret> = $body;
                        to_json(result?)
                    })*
                    _ => Err(Error::UnknownCommand { command: name.to_string() }),
                }
            }
        }
    };
}

commands! {
    /// CPU, memory and GPUs of this machine.
    hardware(NoArgs) -> crate::Hardware, App, |api, a| api.hardware();
    /// Everything the start screen shows.
    overview(NoArgs) -> crate::Overview, App, |api, a| api.overview();
    /// The bundled starter model, when its file is present.
    default_model(NoArgs) -> Option<crate::DefaultModel>, App, |api, a| api.default_model();
    /// Where runs can train on this computer (processor, each GPU), which worker trains there, and what `auto` picks.
    devices(NoArgs) -> crate::Devices, App, |api, a| api.devices();
    /// Installed models.
    list_models(NoArgs) -> Vec<crate::Model>, App, |api, a| api.list_models();
    /// One installed model.
    get_model(IdArgs) -> crate::Model, App, |api, a| api.get_model(a.id);
    /// Suggested models with license and commercial-use flag.
    catalog(NoArgs) -> Vec<crate::models::CatalogItem>, App, |api, a| api.catalog();
    /// Hub search.
    search_models(SearchArgs) -> Vec<crate::HubModel>, App, |api, a| api.search_models(&a.query, a.limit.unwrap_or(20));
    /// Downloads a hub model into the shared cache and adds it.
    pull_model(crate::models::PullRequest) -> crate::Model, App, |api, a| api.pull_model(&a, None, None);
    /// Cancels a download started from a screen; what it fetched stays, and downloading again resumes it.
    cancel_pull(crate::pulls::CancelPull) -> crate::pulls::CancelledPull, App, |api, a| api.cancel_pull(&a.repo);
    /// Adds a local model folder or GGUF file.
    import_model(PathArgs) -> crate::Model, App, |api, a| api.import_model(&a.path);
    /// Predicts a job's peak memory, whether it fits, and how long it takes.
    plan(crate::plan::PlanRequest) -> crate::plan::Plan, App, |api, a| api.plan(&a);
    /// Training defaults, every setting explained with its safe range, and presets for the data and this machine.
    train_defaults(crate::defaults::DefaultsRequest) -> crate::defaults::TrainDefaults, App, |api, a| api.train_defaults(&a);
    /// Reads a settings file (TOML, YAML or JSON, as `whet train --config` takes it) over the defaults, with what in it was not used.
    config_open(crate::settings_files::ConfigOpen) -> crate::settings_files::ConfigOpened, App, |api, a| api.config_open(&a.path);
    /// Writes settings to a file `whet train --config` reads back; an existing file only with `overwrite`.
    config_save(crate::settings_files::ConfigSave) -> crate::settings_files::ConfigSaved, App, |api, a| api.config_save(&a);
    /// Imported datasets.
    list_datasets(NoArgs) -> Vec<crate::Dataset>, App, |api, a| api.list_datasets();
    /// One dataset.
    get_dataset(IdArgs) -> crate::Dataset, App, |api, a| api.get_dataset(a.id);
    /// Imports a file as a new dataset.
    data_import(crate::datasets::ImportRequest) -> crate::datasets::ImportResult, App, |api, a| api.data_import(&a);
    /// Every version of a dataset and the steps that made it.
    data_versions(DatasetArgs) -> Vec<crate::DatasetVersion>, App, |api, a| api.data_versions(&a.dataset);
    /// Proposes a cleaning, or applies it as a new version.
    data_clean(crate::datasets::CleanRequest) -> crate::datasets::CleanResult, App, |api, a| api.data_clean(&a);
    /// Splits a version into train, validation and test.
    data_split(crate::datasets::SplitRequest) -> crate::datasets::SplitResult, App, |api, a| api.data_split(&a);
    /// Token lengths of a version's rows.
    data_stats(crate::datasets::StatsRequest) -> crate::datasets::DataStats, App, |api, a| api.data_stats(&a);
    /// A page of a version's rows, as conversations or texts.
    data_rows(crate::datasets::RowsRequest) -> crate::datasets::RowsPage, App, |api, a| api.data_rows(&a);
    /// One row's tokens, with the trained ones marked.
    data_preview(crate::datasets::PreviewRequest) -> crate::datasets::Preview, App, |api, a| api.data_preview(&a);
    /// Writes a version (or a split) as JSONL.
    data_export(crate::datasets::ExportRequest) -> crate::datasets::ExportResult, App, |api, a| api.data_export(&a);
    /// Rows edited and deleted by hand, saved as a new version with what changed as its provenance.
    data_edit(crate::datasets::EditRequest) -> crate::datasets::EditResult, App, |api, a| api.data_edit(&a);
    /// Keeps a file's text, sent by a page that cannot give its path, in the home folder's imports folder under a fresh name.
    data_upload(crate::uploads::UploadRequest) -> crate::uploads::Uploaded, App, |api, a| api.data_upload(&a);
    /// Variations of chosen rows written by a local model, into a review queue; none enters a version until accepted.
    augment_start(crate::augment::AugmentRequest) -> crate::queue::QueueItems, App, |api, a| api.augment_start(&a);
    /// A random sample of a version's rows, into a review queue for experts to check before training.
    data_sample(crate::queue::SampleRequest) -> crate::queue::QueueItems, App, |api, a| api.data_sample(&a);
    /// Review queues with their counts, newest first; those of one dataset when given.
    data_queues(crate::queue::QueuesArgs) -> Vec<crate::queue::QueueSummary>, App, |api, a| api.data_queues(a.dataset.as_deref());
    /// A review queue's items: each row beside its source, how it was made, and what was decided.
    queue_items(crate::queue::QueueArgs) -> crate::queue::QueueItems, App, |api, a| api.queue_items(a.queue);
    /// Accepts, edits, rejects or flags an item; a later decision replaces it until the queue is applied.
    queue_decide(crate::queue::DecideRequest) -> crate::queue::QueueItemView, App, |api, a| api.queue_decide(&a);
    /// A queue's counts, and for a data review the sample size and the share flagged.
    queue_summary(crate::queue::QueueArgs) -> crate::queue::QueueSummary, App, |api, a| api.queue_summary(a.queue);
    /// Makes the queue's new dataset version: accepted variations added, or the sample's edits applied.
    queue_apply(crate::queue::QueueArgs) -> crate::queue::ApplyResult, App, |api, a| api.queue_apply(a.queue);
    /// Training runs.
    list_runs(NoArgs) -> Vec<crate::Run>, App, |api, a| api.list_runs();
    /// One run.
    get_run(IdArgs) -> crate::Run, App, |api, a| api.get_run(a.id);
    /// Starts a training run in a worker process.
    start_run(crate::StartRun) -> crate::Run, App, |api, a| api.start_run(&a);
    /// Checkpoints a run and stops its worker.
    pause_run(IdArgs) -> crate::Run, App, |api, a| api.pause_run(a.id);
    /// Continues a run from its last good checkpoint.
    resume_run(IdArgs) -> crate::Run, App, |api, a| api.resume_run(a.id);
    /// Checkpoints a run, saves its adapter and ends it.
    stop_run(IdArgs) -> crate::Run, App, |api, a| api.stop_run(a.id);
    /// Where a run's adapter and best and last checkpoints are, and what discarding it would delete.
    run_files(IdArgs) -> crate::outputs::RunFiles, App, |api, a| api.run_files(a.id);
    /// Stops a run, deletes its own files (never exports or anything else) and marks it discarded.
    discard_run(IdArgs) -> crate::outputs::Discarded, App, |api, a| api.discard_run(a.id);
    /// A run's events since a byte offset of its log.
    run_events(EventsArgs) -> crate::RunEvents, App, |api, a| api.run_events(a.id, a.since.unwrap_or(0));
    /// Exports a finished run: PEFT adapter, merged weights, GGUF, Ollama or an Axolotl job.
    export_run(crate::export_run::RunExport) -> crate::export_run::RunExportReport, App, |api, a| api.export_run(&a);
    /// A run's metrics, one row per step and evaluation.
    run_metrics(IdArgs) -> Vec<serde_json::Value>, App, |api, a| api.run_metrics(a.id);
    /// A run's loss curve thinned for drawing (each bucket's lowest and highest point), and where to follow it from.
    run_series(crate::series::SeriesArgs) -> crate::series::RunSeries, App, |api, a| api.run_series(&a);
    /// A run's metrics as CSV text.
    run_metrics_csv(IdArgs) -> String, App, |api, a| api.run_metrics_csv(a.id);
    /// Answers held-out prompts with the base model, the tuned one and optionally another run, and scores them.
    eval_run(crate::evaluation::EvalRequest) -> crate::evaluation::Evaluation, App, |api, a| api.eval_run(&a);
    /// One prompt answered by a run's base model and by the tuned one, both whole (the window and the browser stream them instead).
    playground(crate::playground::PlaygroundRequest) -> crate::playground::PlaygroundResult, App, |api, a| api.playground(&a, &mut |_| true);
    /// Evaluations, newest first; those of one run when `run` is given.
    list_evaluations(EvalListArgs) -> Vec<crate::evaluation::Evaluation>, App, |api, a| api.list_evaluations(a.run);
    /// One evaluation with every item's prompt, reference, answers and scores.
    eval_results(IdArgs) -> crate::evaluation::EvalResults, App, |api, a| api.eval_results(a.id);
    /// An evaluation's answers as CSV (one line per item and side) or JSON lines (one per item).
    eval_export(EvalExportArgs) -> String, App, |api, a| api.eval_export(a.id, a.format);
    /// The criteria every review session starts with, and the flags raters can set.
    review_rubric(NoArgs) -> crate::review::Rubric, App, |api, a| api.review_rubric();
    /// Starts a blind review of an evaluation: rubric, raters per item, the seed of the A/B draws.
    review_create(crate::review::ReviewCreate) -> crate::review::ReviewSessionInfo, App, |api, a| api.review_create(&a);
    /// Review sessions, newest first.
    review_sessions(NoArgs) -> Vec<crate::review::ReviewSessionInfo>, App, |api, a| api.review_sessions();
    /// Invites a named rater: a random token, shown once, and a queue of items.
    review_invite(crate::review::ReviewInvite) -> crate::review::Invitation, App, |api, a| api.review_invite(&a);
    /// Revokes a rater's token; their unrated items return to the pool.
    review_revoke(crate::review::RaterArgs) -> crate::review::RaterStatus, App, |api, a| api.review_revoke(a.rater);
    /// Who rated what: progress per rater.
    review_status(IdArgs) -> crate::review::ReviewStatus, App, |api, a| api.review_status(a.id);
    /// Closes a session: no more ratings, and raters may see which model wrote which answer.
    review_close(IdArgs) -> crate::review::ReviewSessionInfo, App, |api, a| api.review_close(a.id);
    /// Means with intervals, win rate, agreement and disputed items; people and machines apart.
    review_results(IdArgs) -> crate::review_results::ReviewResults, App, |api, a| api.review_results(a.id);
    /// Every current rating with the sides named, as CSV or JSON lines.
    review_export(crate::review_results::ReviewExportArgs) -> String, App, |api, a| api.review_export(&a);
    /// Preference pairs (prompt, chosen, rejected) as JSON lines for preference tuning.
    review_preferences(crate::review_results::ReviewPreferencesArgs) -> String, App, |api, a| api.review_preferences(&a);
    /// Accepted edited responses as a new dataset version with provenance "review".
    review_accept(crate::review_results::ReviewAccept) -> crate::review_results::AcceptResult, App, |api, a| api.review_accept(&a);
    /// Serves the review pages to raters on other computers, on an address given in full; with the links raters open.
    review_share(crate::sharing::ShareRequest) -> crate::sharing::ReviewShare, App, |api, a| api.review_share(&a);
    /// Stops serving the review pages.
    review_unshare(NoArgs) -> crate::sharing::Unshared, App, |api, a| api.review_unshare();
    /// Where the review pages are served now, if anywhere.
    review_shared(NoArgs) -> Option<crate::sharing::ReviewShare>, App, |api, a| api.review_shared();
    /// Rates a session's items with a local model and a rubric prompt, as a machine rater kept apart from people.
    review_judge(crate::judge::JudgeRequest) -> crate::judge::JudgeSummary, App, |api, a| api.review_judge(&a);
    /// Saves an evaluation's answers, a review's ratings or its preference pairs into a file (a bare name: the home folder's exports folder).
    save_table(crate::tables::SaveTable) -> crate::tables::SavedTable, App, |api, a| api.save_table(&a);
    /// A rater's next item (or a given one of their queue), the two answers as A and B.
    review_next(crate::review::NextArgs) -> crate::review::RaterView, Rater, |api, a| api.review_next(&a);
    /// A rater's rating of an item of their queue; a later one replaces it and keeps it as history.
    review_submit(crate::review::SubmitArgs) -> crate::review::SubmitResult, Rater, |api, a| api.review_submit(&a);
    /// A rater's progress, "N of M".
    review_progress(crate::review::TokenArgs) -> crate::review::Progress, Rater, |api, a| api.review_progress(&a.token);
    /// Folders the app may read and write besides its home folder.
    allowed_folders(NoArgs) -> Vec<whetstone_store::AllowedFolder>, App, |api, a| api.allowed_folders();
    /// Lets the app read and write a folder (the window's file picker does this for what the user picks).
    allow_folder(FolderArgs) -> whetstone_store::AllowedFolder, Window, |api, a| api.allow_folder(&a.path);
    /// Takes a folder off the allowed list.
    forget_folder(FolderArgs) -> whetstone_store::AllowedFolder, Window, |api, a| api.forget_folder(&a.path);
    /// Shows a folder (an export, a run) in the system's file manager.
    open_folder(FolderArgs) -> String, Window, |api, a| api.open_folder(&a.path);
}

/// The command named `name`, if there is one.
pub fn command(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

impl Api {
    /// Runs `command` with `args` (a JSON object, or `null` for none) for code in this process (the
    /// CLI, tests), which may call every command with paths as given.
    pub fn dispatch(&self, command: &str, args: Value) -> Result<Value> {
        self.dispatch_from(Caller::Local, command, args)
    }

    /// Runs `command` for `caller`: refused when it is out of the caller's reach, with the paths in
    /// its arguments confined for callers from outside this process.
    pub fn dispatch_from(&self, caller: Caller, command: &str, args: Value) -> Result<Value> {
        let Some(c) = self::command(command) else {
            return Err(Error::UnknownCommand { command: command.to_string() });
        };
        if !caller.reaches(c.reach) {
            return Err(Error::OutOfReach { command: command.to_string() });
        }
        self.run_command(caller, command, args)
    }
}

impl Api {
    /// `eval_run` for `caller`, telling `progress` of each stage as it goes: what the window's Channel
    /// and the server's event stream run. The arguments are `eval_run`'s, checked and confined as the
    /// command table does, so a refused request is refused before any model is loaded.
    pub fn eval_run_from(
        &self,
        caller: Caller,
        args: Value,
        progress: &mut dyn FnMut(&crate::evaluation::EvalProgress),
    ) -> Result<crate::evaluation::Evaluation> {
        let name = "eval_run";
        let reach = self::command(name).map(|c| c.reach).unwrap_or(Reach::Window);
        if !caller.reaches(reach) {
            return Err(Error::OutOfReach { command: name.to_string() });
        }
        let mut req: crate::evaluation::EvalRequest = parse_args(name, args)?;
        if caller != Caller::Local {
            Confine::confine(&mut req, self)?;
        }
        self.eval_run_with_progress(&req, progress)
    }
}

fn parse_args<T: DeserializeOwned>(command: &str, args: Value) -> Result<T> {
    let args = match args {
        Value::Null => Value::Object(Default::default()),
        Value::Object(_) => args,
        other => {
            return Err(Error::InvalidInput(format!(
                "arguments for `{command}` must be a JSON object, got {}",
                json_kind(&other)
            )))
        }
    };
    serde_json::from_value(args).map_err(|e| Error::InvalidInput(format!("arguments for `{command}`: {e}")))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn to_json<T: Serialize>(value: T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Internal(format!("the result could not be encoded as JSON: {e}")))
}
