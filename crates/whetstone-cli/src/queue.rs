//! `whet data augment|sample|queue|decide|apply`: review queues from the command line. Variations a model
//! writes and sampled rows wait in a queue; each is accepted, edited, rejected or flagged, and applying the
//! queue makes a new version of the dataset.

use clap::Args;
use std::io::Write;
use whetstone_api::augment::{AugmentMode, AugmentProgress, AugmentRequest, RewriteInstruction};
use whetstone_api::datasets::RowView;
use whetstone_api::queue::{Decision, DecideRequest, EditRow, FlagNote, QueueItemView, QueueItems, QueueKind, QueueSummary, RowPart, SampleRequest};
use whetstone_api::Api;

#[derive(Args)]
pub struct AugmentArgs {
    /// Dataset name or id
    dataset: String,
    /// Rows to vary, numbered from 1 as `whet data preview --row` takes them, e.g. --rows 2,5,9
    #[arg(long, value_delimiter = ',', required = true)]
    rows: Vec<usize>,
    /// paraphrase (the same meaning in other words) or rewrite (as --instruction says)
    #[arg(long, default_value = "paraphrase", value_name = "paraphrase|rewrite")]
    mode: String,
    /// How to rewrite, in plain words, e.g. "friendlier, simpler" (with --mode rewrite)
    #[arg(long)]
    instruction: Option<String>,
    /// What to vary in a conversation: prompt (the question) or answer [default: prompt to paraphrase, answer to rewrite]
    #[arg(long, value_name = "prompt|answer")]
    part: Option<String>,
    /// Variations of each row
    #[arg(long, default_value_t = 2)]
    per_row: usize,
    /// The model that writes: an installed model's id or name, or a model file or folder [default: the bundled model]
    #[arg(long, conflicts_with = "run")]
    model: Option<String>,
    /// A finished run whose tuned model writes
    #[arg(long)]
    run: Option<i64>,
    /// 0 writes the most likely text; higher varies more
    #[arg(long, default_value_t = 0.8)]
    temperature: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Longest variation in tokens
    #[arg(long, default_value_t = 256)]
    max_new: usize,
    /// Version to vary [default: latest]
    #[arg(long)]
    version: Option<u32>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SampleArgs {
    /// Dataset name or id
    dataset: String,
    /// How many rows to check
    #[arg(long)]
    size: usize,
    /// The same seed draws the same rows
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Version to sample [default: latest]
    #[arg(long)]
    version: Option<u32>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct QueueArgs {
    /// Queue id, as `whet data augment` or `whet data sample` printed it; without one, every queue
    queue: Option<i64>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct DecideArgs {
    /// Queue id
    queue: i64,
    /// Item number in the queue
    item: u32,
    /// accept, edit (with --row), reject or flag (with --note); a later decision replaces this one
    #[arg(value_name = "accept|edit|reject|flag")]
    decision: String,
    /// The edited row as JSON, in any shape an import reads, e.g. '{"prompt": "…", "response": "…"}'
    #[arg(long)]
    row: Option<String>,
    /// What is wrong with a flagged row
    #[arg(long)]
    note: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ApplyArgs {
    /// Queue id
    queue: i64,
    #[arg(long)]
    json: bool,
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_progress(p: &AugmentProgress) {
    let mut err = std::io::stderr();
    let width = 30;
    let filled = p.done * width / p.total.max(1);
    let _ = write!(err, "\r\x1b[2K{} [{}{}] {}/{}", p.stage, "#".repeat(filled), " ".repeat(width - filled), p.done, p.total);
    let _ = err.flush();
}

/// A row on one line: each message as `role: text`, or the text.
fn one_line(r: &RowView) -> String {
    let joined = match &r.text {
        Some(t) => t.clone(),
        None => r.messages.iter().map(|m| format!("{}: {}", m.role, m.content)).collect::<Vec<_>>().join(" | "),
    };
    whetstone_data::excerpt(&joined, 160)
}

fn decision_word(i: &QueueItemView) -> String {
    match (&i.decision, &i.note) {
        (Some(d), Some(note)) => format!("{}: {note}", serde_json::to_value(d).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()),
        (Some(d), None) => serde_json::to_value(d).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        (None, _) => "not decided".into(),
    }
}

fn print_queue(q: &QueueItems) {
    let info = &q.queue;
    let what = match info.kind {
        QueueKind::Augment => "variations to review",
        QueueKind::Sample => "sampled rows to check",
    };
    println!("queue {}: {} {what} from `{}` version {}", info.id, info.items, info.dataset, info.version);
    for i in &q.items {
        println!("  item {} (row {}) [{}]", i.item, i.source_row, decision_word(i));
        if info.kind == QueueKind::Augment {
            println!("    source:    {}", one_line(&i.source));
            println!("    variation: {}", one_line(&i.row));
        } else {
            println!("    row: {}", one_line(&i.row));
        }
        if let Some(e) = &i.edited {
            println!("    edited:    {}", one_line(e));
        }
        if let Some(p) = &i.problem {
            println!("    cannot be accepted as written: {p}");
        }
    }
    match info.applied_version {
        Some(v) => println!("applied as version {v}"),
        None => {
            let verbs = match info.kind {
                QueueKind::Augment => "accept|edit --row JSON|reject",
                QueueKind::Sample => "accept|edit --row JSON|flag --note TEXT",
            };
            println!("next: decide each item with `whet data decide {} ITEM {verbs}` (or in the app: Datasets, Review rows),", info.id);
            println!("      then `whet data apply {}` to make the new version", info.id);
        }
    }
}

fn print_summary(s: &QueueSummary) {
    let q = &s.queue;
    let state = q.applied_version.map(|v| format!(", applied as version {v}")).unwrap_or_default();
    println!("queue {} ({}) on `{}` version {}{state}", q.id, q.kind.as_str(), q.dataset, q.version);
    match q.kind {
        QueueKind::Augment => println!(
            "  {} variations: {} accepted, {} edited, {} rejected, {} not decided",
            q.items, s.accepted, s.edited, s.rejected, s.undecided
        ),
        QueueKind::Sample => {
            let share = s.share_flagged.unwrap_or(0.0) * 100.0;
            println!(
                "  sample of {} rows: {} flagged ({share:.1}%), {} accepted, {} edited, {} not checked yet",
                q.items, s.flagged, s.accepted, s.edited, s.undecided
            );
            for f in &s.flags {
                println!("    row {} (item {}): {}", f.row, f.item, f.note);
            }
        }
    }
}

pub fn augment(api: &Api, a: &AugmentArgs) -> anyhow::Result<()> {
    let mode = match (a.mode.as_str(), &a.instruction) {
        ("paraphrase", None) => AugmentMode::Paraphrase,
        ("paraphrase", Some(_)) => anyhow::bail!("--instruction goes with --mode rewrite; paraphrasing keeps the meaning as it is"),
        ("rewrite", Some(i)) => AugmentMode::Rewrite(RewriteInstruction { instruction: i.clone() }),
        ("rewrite", None) => anyhow::bail!("--mode rewrite needs --instruction, e.g. --instruction \"friendlier, simpler\""),
        (other, _) => anyhow::bail!("--mode {other}: use paraphrase or rewrite"),
    };
    let part = match a.part.as_deref() {
        None => None,
        Some("prompt") => Some(RowPart::Prompt),
        Some("answer") => Some(RowPart::Answer),
        Some(other) => anyhow::bail!("--part {other}: use prompt or answer"),
    };
    let req = AugmentRequest {
        dataset: a.dataset.clone(),
        version: a.version,
        rows: a.rows.clone(),
        mode,
        part,
        per_row: a.per_row,
        model: a.model.clone(),
        run: a.run,
        temperature: Some(a.temperature),
        seed: Some(a.seed),
        max_new_tokens: Some(a.max_new),
    };
    let q = api.augment_start_with_progress(&req, &mut print_progress)?;
    eprintln!();
    if a.json {
        return print_json(&q);
    }
    print_queue(&q);
    Ok(())
}

pub fn sample(api: &Api, a: &SampleArgs) -> anyhow::Result<()> {
    let q = api.data_sample(&SampleRequest { dataset: a.dataset.clone(), version: a.version, size: a.size, seed: Some(a.seed) })?;
    if a.json {
        return print_json(&q);
    }
    print_queue(&q);
    Ok(())
}

pub fn show(api: &Api, a: &QueueArgs) -> anyhow::Result<()> {
    let Some(id) = a.queue else {
        let all = api.data_queues(None)?;
        if a.json {
            return print_json(&all);
        }
        if all.is_empty() {
            println!("no queues yet: make variations with `whet data augment DATASET --rows 1,2` or check a sample with `whet data sample DATASET --size 20`");
        }
        for s in &all {
            print_summary(s);
        }
        return Ok(());
    };
    let q = api.queue_items(id)?;
    if a.json {
        return print_json(&serde_json::json!({"queue": q, "summary": api.queue_summary(id)?}));
    }
    print_queue(&q);
    print_summary(&api.queue_summary(id)?);
    Ok(())
}

pub fn decide(api: &Api, a: &DecideArgs) -> anyhow::Result<()> {
    let decision = match a.decision.as_str() {
        "accept" => Decision::Accept,
        "reject" => Decision::Reject,
        "edit" => {
            let Some(row) = &a.row else { anyhow::bail!("edit needs the new row: --row '{{\"prompt\": \"…\", \"response\": \"…\"}}'") };
            let row = serde_json::from_str(row).map_err(|e| anyhow::anyhow!("--row is not JSON: {e}"))?;
            Decision::Edit(EditRow { row })
        }
        "flag" => {
            let Some(note) = &a.note else { anyhow::bail!("flag needs --note saying what is wrong with the row") };
            Decision::Flag(FlagNote { note: note.clone() })
        }
        other => anyhow::bail!("`{other}`: decide accept, edit, reject or flag"),
    };
    let item = api.queue_decide(&DecideRequest { queue: a.queue, item: a.item, decision })?;
    if a.json {
        return print_json(&item);
    }
    println!("item {} of queue {}: {}", item.item, a.queue, decision_word(&item));
    print_summary(&api.queue_summary(a.queue)?);
    Ok(())
}

pub fn apply(api: &Api, a: &ApplyArgs) -> anyhow::Result<()> {
    let r = api.queue_apply(a.queue)?;
    if a.json {
        return print_json(&r);
    }
    let what = match r.summary.queue.kind {
        QueueKind::Augment => format!("{} accepted rows added", r.added),
        QueueKind::Sample => format!("{} edited rows changed, {} flagged rows kept and listed", r.changed, r.summary.flagged),
    };
    println!("`{}` version {}: {} rows ({what}); version {} is unchanged", r.dataset.name, r.version.version, r.version.rows, r.summary.queue.version);
    print_summary(&r.summary);
    Ok(())
}
