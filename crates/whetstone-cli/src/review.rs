//! `whet review agreement`: Krippendorff's alpha per criterion from a CSV of ratings, the same figure a
//! review session's results show, computed from a file anyone can check.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use whetstone_eval::agreement::by_criterion;
use whetstone_eval::inputs::read_ratings;

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Krippendorff's alpha (ordinal and nominal) per criterion from a CSV with columns rater,item,criterion,score
    Agreement(AgreementArgs),
}

#[derive(Args)]
pub struct AgreementArgs {
    /// CSV with a header naming rater, item, criterion and score (other columns are ignored)
    file: PathBuf,
    /// Print the figures as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: &ReviewCommand) -> anyhow::Result<()> {
    match cmd {
        ReviewCommand::Agreement(a) => agreement(a),
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
