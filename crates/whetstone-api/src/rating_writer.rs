//! Raters' ratings written together. Each commit waits for the disk (a few milliseconds here), and
//! with one commit per rating, fifty raters at once queued behind each other's syncs. Ratings that
//! arrive while one transaction is being written now go into the next one together (group commit):
//! still one sync before any of them is acknowledged, but one sync for many. The writer has a
//! connection of its own, so raters' reads go on while it waits for the disk.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use whetstone_store::{NewRating, Store, Submitted};

#[derive(Default)]
pub(crate) struct RatingWriter {
    state: Mutex<State>,
    /// Woken when a batch is written: its raters take their outcome, and one waiting rater the next batch.
    written: Condvar,
    conn: Mutex<Option<Store>>,
}

#[derive(Default)]
struct State {
    pending: Vec<Job>,
    /// A batch is being written (by one of the raters' own threads).
    writing: bool,
    outcomes: HashMap<u64, Result<Submitted>>,
    next: u64,
}

struct Job {
    id: u64,
    rater_id: i64,
    item: u32,
    rating: serde_json::Value,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RatingWriter {
    /// Records the rating in the database at `db` and returns once it is on disk (or refused).
    pub(crate) fn submit(&self, db: &Path, rater_id: i64, item: u32, rating: serde_json::Value) -> Result<Submitted> {
        let mut state = lock(&self.state);
        let id = state.next;
        state.next += 1;
        state.pending.push(Job { id, rater_id, item, rating });
        loop {
            if let Some(outcome) = state.outcomes.remove(&id) {
                return outcome;
            }
            if state.writing {
                state = self.written.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            }
            // No one is writing and this rating is still pending: write everything pending now.
            state.writing = true;
            let batch = std::mem::take(&mut state.pending);
            drop(state);
            let result = catch_unwind(AssertUnwindSafe(|| self.write(db, &batch)))
                .unwrap_or_else(|_| Err(Error::Internal("writing ratings stopped unexpectedly".into())));
            state = lock(&self.state);
            match result {
                Ok(outcomes) => {
                    for (job, outcome) in batch.iter().zip(outcomes) {
                        state.outcomes.insert(job.id, Ok(outcome));
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    for job in &batch {
                        state.outcomes.insert(job.id, Err(Error::Internal(format!("the rating could not be stored: {why}"))));
                    }
                }
            }
            state.writing = false;
            self.written.notify_all();
        }
    }

    fn write(&self, db: &Path, batch: &[Job]) -> Result<Vec<Submitted>> {
        let mut conn = lock(&self.conn);
        if conn.is_none() {
            *conn = Some(Store::open(db)?);
        }
        let store = conn.as_mut().expect("opened above");
        let ratings: Vec<NewRating<'_>> = batch.iter().map(|j| NewRating { rater_id: j.rater_id, item: j.item, rating: &j.rating }).collect();
        Ok(store.submit_ratings(&ratings)?)
    }
}

/// The database file of a home folder.
pub(crate) fn database(home: &Path) -> PathBuf {
    home.join(crate::DATABASE_FILE)
}
