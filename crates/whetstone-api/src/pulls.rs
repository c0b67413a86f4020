//! Downloads a screen watches: a pull's progress is pushed to the caller as it happens (the window's
//! Channel, the server's event stream), and another call can cancel it. What was fetched stays in
//! the cache as a partial file, so pulling the same repo again resumes where it stopped.

use crate::error::{Error, Result};
use crate::models::PullRequest;
use crate::Api;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use whetstone_hub::FileProgress;
use whetstone_store::Model;

/// Pulls under way in this process, by repo id (lower case), each with its cancel flag.
#[derive(Default)]
pub(crate) struct Pulls(Mutex<HashMap<String, Arc<AtomicBool>>>);

/// What a followed pull reports: progress while it fetches, then the model it added.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PullEvent {
    Progress(FileProgress),
    Done { model: Model },
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct CancelPull {
    /// The repo id the pull was started with.
    pub repo: String,
}

/// Whether there was a pull to cancel.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct CancelledPull {
    pub repo: String,
    pub cancelled: bool,
}

/// Takes a pull off the list when it ends, however it ends.
struct Registered<'a> {
    pulls: &'a Pulls,
    key: String,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.pulls.0.lock() {
            map.remove(&self.key);
        }
    }
}

impl Api {
    /// Pulls `req` like [`Api::pull_model`], sending `send` its progress (at most every 200 ms) and
    /// then the added model. A `send` that returns false means nobody is watching any more: the
    /// pull is cancelled, keeping its partial file for the next pull to resume. A second pull of a
    /// repo already being pulled here is refused rather than racing it on the same cache files.
    pub fn pull_follow(&self, req: &PullRequest, send: &mut dyn FnMut(&PullEvent) -> bool) -> Result<Model> {
        let key = req.repo.trim().to_lowercase();
        if key.is_empty() {
            return Err(Error::InvalidInput("name the model to download as `org/name`".into()));
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let _registered = {
            let mut map = self.pulls.0.lock().map_err(|_| Error::Internal("the list of downloads is unusable".into()))?;
            if map.contains_key(&key) {
                return Err(Error::PullBusy { repo: req.repo.clone() });
            }
            map.insert(key.clone(), cancel.clone());
            Registered { pulls: &self.pulls, key }
        };
        let (tx, rx) = mpsc::channel::<FileProgress>();
        let progress: Arc<whetstone_hub::ProgressFn> = Arc::new(move |p: &FileProgress| {
            let _ = tx.send(p.clone());
        });
        let model = std::thread::scope(|scope| {
            let worker = scope.spawn(|| self.pull_model(req, Some(cancel.clone()), Some(progress)));
            loop {
                match rx.recv_timeout(Duration::from_millis(250)) {
                    Ok(p) => {
                        if !send(&PullEvent::Progress(p)) {
                            cancel.store(true, Ordering::Relaxed);
                        }
                    }
                    // The progress sender lives as long as the download; its end closes the channel.
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) if worker.is_finished() => break,
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
            worker.join().map_err(|_| Error::Internal(format!("the download of {} stopped unexpectedly", req.repo)))?
        })?;
        send(&PullEvent::Done { model: model.clone() });
        Ok(model)
    }

    /// Cancels a pull started with [`Api::pull_follow`]; it ends with the `cancelled` error and its
    /// partial file stays for a later pull to resume.
    pub fn cancel_pull(&self, repo: &str) -> Result<CancelledPull> {
        let key = repo.trim().to_lowercase();
        let map = self.pulls.0.lock().map_err(|_| Error::Internal("the list of downloads is unusable".into()))?;
        let flag = map.get(&key);
        if let Some(f) = flag {
            f.store(true, Ordering::Relaxed);
        }
        Ok(CancelledPull { repo: repo.to_string(), cancelled: flag.is_some() })
    }
}
