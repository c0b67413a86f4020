//! Command names and JSON arguments → typed [`Api`] methods, for the HTTP server and tests.

use crate::error::{Error, Result};
use crate::Api;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every command [`Api::dispatch`] knows, in the order a reader would look for them.
pub const COMMANDS: &[&str] = &[
    "hardware",
    "overview",
    "default_model",
    "list_models",
    "get_model",
    "catalog",
    "search_models",
    "pull_model",
    "import_model",
    "plan",
    "list_datasets",
    "get_dataset",
    "data_import",
    "data_versions",
    "data_clean",
    "data_split",
    "data_stats",
    "data_preview",
    "data_export",
    "list_runs",
    "get_run",
    "start_run",
    "pause_run",
    "resume_run",
    "stop_run",
    "run_events",
    "run_metrics",
    "run_metrics_csv",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetArgs {
    dataset: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdArgs {
    id: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsArgs {
    id: i64,
    #[serde(default)]
    since: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    20
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathArgs {
    path: std::path::PathBuf,
}

impl Api {
    /// Runs `command` with `args` (a JSON object, or `null` for none) and returns its result as JSON.
    pub fn dispatch(&self, command: &str, args: Value) -> Result<Value> {
        match command {
            "hardware" => {
                no_args(command, args)?;
                to_json(self.hardware()?)
            }
            "overview" => {
                no_args(command, args)?;
                to_json(self.overview()?)
            }
            "default_model" => {
                no_args(command, args)?;
                to_json(self.default_model()?)
            }
            "list_models" => {
                no_args(command, args)?;
                to_json(self.list_models()?)
            }
            "get_model" => to_json(self.get_model(parse_args::<IdArgs>(command, args)?.id)?),
            "catalog" => {
                no_args(command, args)?;
                to_json(self.catalog()?)
            }
            "search_models" => {
                let a = parse_args::<SearchArgs>(command, args)?;
                to_json(self.search_models(&a.query, a.limit)?)
            }
            "pull_model" => to_json(self.pull_model(&parse_args::<crate::models::PullRequest>(command, args)?, None, None)?),
            "import_model" => to_json(self.import_model(&parse_args::<PathArgs>(command, args)?.path)?),
            "plan" => to_json(self.plan(&parse_args::<crate::plan::PlanRequest>(command, args)?)?),
            "list_datasets" => {
                no_args(command, args)?;
                to_json(self.list_datasets()?)
            }
            "get_dataset" => to_json(self.get_dataset(parse_args::<IdArgs>(command, args)?.id)?),
            "data_import" => to_json(self.data_import(&parse_args(command, args)?)?),
            "data_versions" => to_json(self.data_versions(&parse_args::<DatasetArgs>(command, args)?.dataset)?),
            "data_clean" => to_json(self.data_clean(&parse_args(command, args)?)?),
            "data_split" => to_json(self.data_split(&parse_args(command, args)?)?),
            "data_stats" => to_json(self.data_stats(&parse_args(command, args)?)?),
            "data_preview" => to_json(self.data_preview(&parse_args(command, args)?)?),
            "data_export" => to_json(self.data_export(&parse_args(command, args)?)?),
            "list_runs" => {
                no_args(command, args)?;
                to_json(self.list_runs()?)
            }
            "get_run" => to_json(self.get_run(parse_args::<IdArgs>(command, args)?.id)?),
            "start_run" => to_json(self.start_run(&parse_args::<crate::StartRun>(command, args)?)?),
            "pause_run" => to_json(self.pause_run(parse_args::<IdArgs>(command, args)?.id)?),
            "resume_run" => to_json(self.resume_run(parse_args::<IdArgs>(command, args)?.id)?),
            "stop_run" => to_json(self.stop_run(parse_args::<IdArgs>(command, args)?.id)?),
            "run_events" => {
                let a = parse_args::<EventsArgs>(command, args)?;
                to_json(self.run_events(a.id, a.since)?)
            }
            "run_metrics" => to_json(self.run_metrics(parse_args::<IdArgs>(command, args)?.id)?),
            "run_metrics_csv" => to_json(self.run_metrics_csv(parse_args::<IdArgs>(command, args)?.id)?),
            _ => Err(Error::UnknownCommand {
                command: command.to_string(),
            }),
        }
    }
}

fn no_args(command: &str, args: Value) -> Result<()> {
    parse_args::<NoArgs>(command, args).map(|_| ())
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
    serde_json::from_value(args)
        .map_err(|e| Error::InvalidInput(format!("arguments for `{command}`: {e}")))
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
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
    serde_json::to_value(value)
        .map_err(|e| Error::Internal(format!("the result could not be encoded as JSON: {e}")))
}
