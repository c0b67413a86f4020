//! Pushed run updates: the window's Channel and the server's event stream both follow a run through
//! [`Api::follow_run`], so a screen is told of each step as the worker logs it instead of asking;
//! a review session's organiser is told of each rating the same way through [`Api::follow_review`].

use crate::error::Result;
use crate::jobs::RunEvents;
use crate::review::ReviewStatus;
use crate::Api;
use std::time::Duration;

/// How often the event log is looked at for new lines. The worker appends one line per optimizer
/// step, so a quarter second keeps a curve live without reading the file needlessly often.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

impl Api {
    /// Sends `send` the run's state and its events from byte `since` of its log, then every batch
    /// of new events or change of state, until the run has ended and its log is read to the end,
    /// or `send` returns false (the listener went away). The first batch is sent even when empty,
    /// so a listener learns the run's state at once. `listening` is asked between reads, so a
    /// listener that left a run with nothing new to say does not keep this loop going.
    pub fn follow_run(
        &self,
        id: i64,
        since: u64,
        every: Duration,
        listening: &dyn Fn() -> bool,
        send: &mut dyn FnMut(&RunEvents) -> bool,
    ) -> Result<()> {
        let mut since = since;
        let mut last_status = None;
        loop {
            if !listening() {
                return Ok(());
            }
            let batch = self.run_events(id, since)?;
            let changed = last_status != Some(batch.run.status);
            if (changed || !batch.events.is_empty()) && !send(&batch) {
                return Ok(());
            }
            since = batch.next;
            last_status = Some(batch.run.status);
            // A finished run's log may still gain the worker's last lines after its status
            // changes; the read after the change picks them up before the stream ends.
            if !batch.run.status.is_active() && !changed && batch.events.is_empty() {
                return Ok(());
            }
            std::thread::sleep(every);
        }
    }
}

/// How often a review session is looked at for new ratings. Raters may rate through another process
/// (`whet serve --review`) that shares the database, so nothing in this process is told of a rating;
/// half a second keeps the organiser's view live at the cost of a few small queries.
pub const REVIEW_FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

impl Api {
    /// Sends `send` a review session's status (who rated what), then each time it changes, until the
    /// session is closed (its closed status is the last message) or the listener goes: `send` returns
    /// false, or `listening` says so between looks.
    pub fn follow_review(
        &self,
        id: i64,
        every: Duration,
        listening: &dyn Fn() -> bool,
        send: &mut dyn FnMut(&ReviewStatus) -> bool,
    ) -> Result<()> {
        let mut last: Option<ReviewStatus> = None;
        loop {
            if !listening() {
                return Ok(());
            }
            let status = self.review_status(id)?;
            if last.as_ref() != Some(&status) && !send(&status) {
                return Ok(());
            }
            let closed = status.session.closed;
            last = Some(status);
            if closed {
                return Ok(());
            }
            std::thread::sleep(every);
        }
    }
}
