//! `whet review agreement`: Krippendorff's alpha per criterion from a CSV of ratings, the same figure a
//! review session's results show, computed from a file anyone can check. `whet review judge`: a local
//! model rates a review session's items as a machine rater.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use whetstone_api::judge::{JudgeProgress, JudgeRequest, JudgeSummary};
use whetstone_eval::agreement::by_criterion;
use whetstone_eval::inputs::read_ratings;

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Krippendorff's alpha (ordinal and nominal) per criterion from a CSV with columns rater,item,criterion,score
    Agreement(AgreementArgs),
    /// Rate a review session's items with a local model (a machine rater, kept apart from people's ratings)
    Judge(JudgeArgs),
}

#[derive(Args)]
pub struct JudgeArgs {
    /// The review session's id
    session: i64,
    /// The judging model: an installed model's id, name or hub id, or a model file or folder
    #[arg(long, required_unless_present = "run", conflicts_with = "run")]
    model: Option<String>,
    /// Judge with a run's base model instead (or its tuned model with --tuned)
    #[arg(long)]
    run: Option<i64>,
    /// With --run: the run's tuned model (its base model with its adapter)
    #[arg(long, requires = "run")]
    tuned: bool,
    /// A file whose text replaces the opening instructions of the rubric prompt (the criteria, the item and the form of the reply are always added)
    #[arg(long, value_name = "FILE")]
    rubric: Option<PathBuf>,
    /// The judge's name among the session's raters [default: "Local judge (MODEL)"]
    #[arg(long)]
    name: Option<String>,
    /// At most this many items
    #[arg(long, value_name = "N")]
    max_items: Option<u32>,
    /// Longest reply per item, in tokens
    #[arg(long, value_name = "N")]
    max_new_tokens: Option<usize>,
    #[arg(long)]
    threads: Option<usize>,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct AgreementArgs {
    /// CSV with a header naming rater, item, criterion and score (other columns are ignored)
    file: PathBuf,
    /// Print the figures as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(home: Option<&Path>, cmd: &ReviewCommand) -> anyhow::Result<()> {
    match cmd {
        ReviewCommand::Agreement(a) => agreement(a),
        ReviewCommand::Judge(a) => judge(&crate::open_api(home)?, a),
    }
}

fn judge(api: &whetstone_api::Api, a: &JudgeArgs) -> anyhow::Result<()> {
    crate::set_threads(a.threads);
    let rubric = a
        .rubric
        .as_ref()
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("cannot read the rubric prompt {}", p.display())))
        .transpose()?;
    let req = JudgeRequest {
        session: a.session,
        model: a.model.clone(),
        run: a.run,
        tuned: a.tuned.then_some(true),
        rubric,
        name: a.name.clone(),
        max_items: a.max_items,
        max_new_tokens: a.max_new_tokens,
    };
    let summary = api.review_judge_with_progress(&req, &mut |p: &JudgeProgress| match &p.failed {
        None => eprintln!("[{}/{}] item {}: rated", p.done, p.total, p.item),
        Some(why) => eprintln!("[{}/{}] item {}: not rated: {why}", p.done, p.total, p.item),
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_judged(&summary);
    }
    Ok(())
}

fn print_judged(s: &JudgeSummary) {
    println!(
        "{} rated {} of {} item(s) of session {} as a machine rater ({}){}.",
        s.rater.name,
        s.rated,
        s.queued,
        s.session,
        s.judge,
        if s.retried > 0 { format!("; {} only after a reminder of the form of the reply", s.retried) } else { String::new() }
    );
    if !s.failed.is_empty() {
        println!("Not rated ({}):", s.failed.len());
        for f in &s.failed {
            println!("  item {}: {}", f.item, f.reason);
            if !f.output.is_empty() {
                println!("    the model wrote: {:?}", f.output);
            }
        }
        println!("Those items went back to the session for another rater.");
    }
}

fn agreement(a: &AgreementArgs) -> anyhow::Result<()> {
    let ratings = read_ratings(&a.file)?;
    let table = by_criterion(&ratings);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&table)?);
        return Ok(());
    }
    let alpha = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "n/a".into());
    let width = table.iter().map(|c| c.criterion.chars().count()).max().unwrap_or(0).max("criterion".len());
    println!("{:<width$}  {:>6}  {:>5}  {:>7}  {:>8}  {:>8}", "criterion", "raters", "items", "ratings", "ordinal", "nominal");
    for c in &table {
        println!(
            "{:<width$}  {:>6}  {:>5}  {:>7}  {:>8}  {:>8}",
            c.criterion,
            c.raters,
            c.items,
            c.ratings,
            alpha(c.ordinal),
            alpha(c.nominal)
        );
        if let Some(note) = &c.note {
            println!("{:<width$}  ({note})", "");
        }
    }
    Ok(())
}
