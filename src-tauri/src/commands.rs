//! The IPC commands: thin wrappers that turn API errors into `{code, message}`.

use tauri::State;
use whetstone_api::{Api, Dataset, DefaultModel, Error, ErrorBody, Hardware, Model, Overview, Run};

/// The API, or why it could not be opened. Keeping the failure lets the window start anyway
/// and show the reason in its error banner instead of the app vanishing.
pub struct Backend(Result<Api, ErrorBody>);

impl Backend {
    pub fn new(api: Api) -> Self {
        Backend(Ok(api))
    }

    pub fn failed(error: &Error) -> Self {
        Backend(Err(error.body()))
    }

    /// Opens `$WHETSTONE_HOME` (or the platform data folder) like every other front end.
    pub fn open_default() -> Self {
        match Api::open_default() {
            Ok(api) => Backend::new(api),
            Err(e) => Backend::failed(&e),
        }
    }

    pub fn open_error(&self) -> Option<&ErrorBody> {
        self.0.as_ref().err()
    }

    fn api(&self) -> Result<&Api, ErrorBody> {
        self.0.as_ref().map_err(Clone::clone)
    }
}

type Reply<T> = Result<T, ErrorBody>;

fn body(e: Error) -> ErrorBody {
    e.body()
}

// Async so the calls run off the main thread and never stall the window.

#[tauri::command]
pub async fn hardware(backend: State<'_, Backend>) -> Reply<Hardware> {
    backend.api()?.hardware().map_err(body)
}

#[tauri::command]
pub async fn overview(backend: State<'_, Backend>) -> Reply<Overview> {
    backend.api()?.overview().map_err(body)
}

#[tauri::command]
pub async fn list_models(backend: State<'_, Backend>) -> Reply<Vec<Model>> {
    backend.api()?.list_models().map_err(body)
}

/// The curated models with their license terms, for the Models page.
#[tauri::command]
pub async fn catalog(backend: State<'_, Backend>) -> Reply<Vec<whetstone_api::models::CatalogItem>> {
    backend.api()?.catalog().map_err(body)
}

#[tauri::command]
pub async fn list_datasets(backend: State<'_, Backend>) -> Reply<Vec<Dataset>> {
    backend.api()?.list_datasets().map_err(body)
}

#[tauri::command]
pub async fn list_runs(backend: State<'_, Backend>) -> Reply<Vec<Run>> {
    backend.api()?.list_runs().map_err(body)
}

#[tauri::command]
pub async fn default_model(backend: State<'_, Backend>) -> Reply<Option<DefaultModel>> {
    backend.api()?.default_model().map_err(body)
}
