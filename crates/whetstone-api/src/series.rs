//! A run's loss curve thinned for drawing. The full history stays in `metrics.jsonl`; a chart a
//! thousand pixels wide needs at most the lowest and highest point of each pixel's share of the
//! steps, so a 100k-step run costs the page what a 1k-step one does and spikes stay visible.

use crate::error::{Error, Result};
use crate::events::{LoggedEvent, RunEvent};
use crate::jobs::EVENTS_FILE;
use whetstone_engine::run::Event;
use crate::Api;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Buckets when the caller does not say: about one per pixel of a wide chart.
pub const DEFAULT_BUCKETS: usize = 1000;
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, ts_rs::TS)]
pub struct SeriesPoint {
    pub step: u64,
    pub loss: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct RunSeries {
    /// Training loss, thinned: every point when there are few, else each bucket's min and max.
    pub train: Vec<SeriesPoint>,
    pub eval: Vec<SeriesPoint>,
    /// How many points the full history holds.
    pub train_points: usize,
    pub eval_points: usize,
    /// Byte offset in the run's event log taken before the history was read: following the run
    /// from here misses no step (one may arrive twice; the later replaces the earlier).
    pub events_offset: u64,
    /// The newest training step and evaluation in the log before that offset, for the figures a
    /// screen shows beside the curve (speed, memory, time left) before the next step arrives.
    pub latest_step: Option<LoggedEvent>,
    pub latest_eval: Option<LoggedEvent>,
    /// The preparation stages of the newest session of the run (started and done), in order.
    pub phases: Vec<LoggedEvent>,
    /// The run's warnings, oldest first (at most the newest [`MAX_WARNINGS`]).
    pub warnings: Vec<LoggedEvent>,
}

/// Warnings a screen is given from a run's history; a run that warns on every step would otherwise
/// send its whole log.
pub const MAX_WARNINGS: usize = 200;

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct SeriesArgs {
    pub id: i64,
    /// Most buckets per series (default 1000); each gives at most two points.
    #[serde(default)]
    #[ts(optional)]
    pub buckets: Option<usize>,
}

/// At most two points per bucket of consecutive points: the lowest and the highest loss, in step
/// order. Series no longer than `2 * buckets` come back whole.
pub fn thin(points: &[SeriesPoint], buckets: usize) -> Vec<SeriesPoint> {
    let buckets = buckets.max(1);
    if points.len() <= 2 * buckets {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(2 * buckets);
    for b in 0..buckets {
        let chunk = &points[b * points.len() / buckets..(b + 1) * points.len() / buckets];
        let lowest = chunk.iter().enumerate().min_by(|x, y| x.1.loss.total_cmp(&y.1.loss)).map(|(i, _)| i);
        let highest = chunk.iter().enumerate().max_by(|x, y| x.1.loss.total_cmp(&y.1.loss)).map(|(i, _)| i);
        if let (Some(lo), Some(hi)) = (lowest, highest) {
            out.push(chunk[lo.min(hi)]);
            if lo != hi {
                out.push(chunk[lo.max(hi)]);
            }
        }
    }
    out
}

/// How much of the log the tail is read from for the newest step: many steps' worth of lines.
const TAIL_BYTES: u64 = 256 * 1024;

/// The log's length up to its last whole line, and the newest step and evaluation in its tail.
fn log_tail(path: &Path) -> Result<(u64, Option<LoggedEvent>, Option<LoggedEvent>)> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, None, None)),
        Err(source) => return Err(Error::Io { action: "read", path: path.to_path_buf(), source }),
    };
    let from = len.saturating_sub(TAIL_BYTES);
    let (events, next) = crate::jobs::read_events(path, from)?;
    // Reading from the middle of a line parses its end as garbage, which read_events skips.
    let (mut step, mut eval) = (None, None);
    for e in events {
        match &e.event {
            RunEvent::Train(Event::Step { .. }) => step = Some(e),
            RunEvent::Train(Event::Eval { .. }) => eval = Some(e),
            _ => {}
        }
    }
    Ok((next, step, eval))
}

/// The phases of the newest session and the warnings in the log's first `upto` bytes. Only the
/// lines that can be one are parsed, so a long run's log of steps is read, not decoded.
fn log_notes(path: &Path, upto: u64) -> Result<(Vec<LoggedEvent>, Vec<LoggedEvent>)> {
    use std::io::{BufRead, Read};
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(source) => return Err(Error::Io { action: "read", path: path.to_path_buf(), source }),
    };
    let mut reader = std::io::BufReader::new(file.take(upto));
    let (mut phases, mut warnings) = (Vec::new(), std::collections::VecDeque::new());
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|source| Error::Io { action: "read", path: path.to_path_buf(), source })?;
        if n == 0 {
            break;
        }
        let has = |tag: &[u8]| line.windows(tag.len()).any(|w| w == tag);
        let wanted = has(b"\"type\":\"phase_") || has(b"\"type\":\"warning\"") || has(b"\"type\":\"status\"");
        if !wanted {
            continue;
        }
        let Ok(e) = serde_json::from_slice::<LoggedEvent>(&line) else { continue };
        match &e.event {
            // A worker taking the run starts a new session, which goes through the phases again.
            RunEvent::Worker(crate::events::WorkerEvent::Status { .. }) => phases.clear(),
            RunEvent::Train(Event::PhaseStarted { .. } | Event::PhaseDone { .. }) => phases.push(e),
            RunEvent::Train(Event::Warning { .. }) => {
                if warnings.len() == MAX_WARNINGS {
                    warnings.pop_front();
                }
                warnings.push_back(e);
            }
            _ => {}
        }
    }
    Ok((phases, warnings.into()))
}

impl Api {
    /// The run's training and evaluation losses, thinned to `buckets` per series.
    pub fn run_series(&self, args: &SeriesArgs) -> Result<RunSeries> {
        let buckets = args.buckets.unwrap_or(DEFAULT_BUCKETS);
        if buckets == 0 || buckets > MAX_BUCKETS {
            return Err(Error::InvalidInput(format!("buckets must be between 1 and {MAX_BUCKETS}, not {buckets}")));
        }
        let run = self.get_run(args.id)?;
        let log = Path::new(&run.out_dir).join(EVENTS_FILE);
        let (events_offset, latest_step, latest_eval) = log_tail(&log)?;
        let (phases, warnings) = log_notes(&log, events_offset)?;
        let rows = self.run_metrics(args.id)?;
        let (mut train, mut eval) = (Vec::new(), Vec::new());
        for row in &rows {
            let (Some(step), Some(loss)) = (row["step"].as_u64(), row["loss"].as_f64()) else { continue };
            if !loss.is_finite() {
                continue;
            }
            match row["kind"].as_str() {
                Some("eval") => eval.push(SeriesPoint { step, loss }),
                _ => train.push(SeriesPoint { step, loss }),
            }
        }
        // A resumed run repeats the steps after its checkpoint: the later row of a step counts.
        for series in [&mut train, &mut eval] {
            let mut latest = std::collections::BTreeMap::new();
            for p in series.drain(..) {
                latest.insert(p.step, p);
            }
            series.extend(latest.into_values());
        }
        Ok(RunSeries {
            train_points: train.len(),
            eval_points: eval.len(),
            train: thin(&train, buckets),
            eval: thin(&eval, buckets),
            events_offset,
            latest_step,
            latest_eval,
            phases,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{thin, SeriesPoint};

    #[test]
    fn a_long_series_keeps_each_buckets_extremes_in_step_order() {
        let points: Vec<SeriesPoint> =
            (0..100_000u64).map(|s| SeriesPoint { step: s + 1, loss: 5.0 / (1.0 + s as f64 / 1000.0) + if s == 54_321 { 3.0 } else { 0.0 } }).collect();
        let thinned = thin(&points, 1000);
        assert!(thinned.len() <= 2000 && thinned.len() >= 1000, "{}", thinned.len());
        assert!(thinned.windows(2).all(|w| w[0].step < w[1].step), "in step order");
        assert_eq!(thinned.first().unwrap().step, 1, "the first point");
        assert_eq!(thinned.last().unwrap().step, 100_000, "the last point");
        assert!(thinned.iter().any(|p| p.step == 54_322), "a one-step spike survives");
        let short: Vec<SeriesPoint> = points[..150].to_vec();
        assert_eq!(thin(&short, 100), short, "short series come back whole");
    }
}
