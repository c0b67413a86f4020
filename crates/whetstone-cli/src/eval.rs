//! `whet eval loss`: how well a model (with or without an adapter) predicts the responses of a dataset.
//! `whet eval score`: every text metric over given predictions and references, without a model, so that
//! any figure the app shows can be reproduced from two files.
//! `whet eval run` / `whet eval show`: a run's base and tuned model answering held-out prompts, stored with
//! the run (the API's `eval_run` and `eval_results`).

use anyhow::bail;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use whetstone_api::evaluation::{EvalProgress, EvalRequest, Evaluation, Side, TableFormat};
use whetstone_api::training;
use whetstone_engine::quant::QuantMode;
use whetstone_eval::inputs::{default_wordnet_dir, read_pairs};
use whetstone_eval::labels::{label_report, LabelReport};
use whetstone_eval::meteor::MeteorOptions;
use whetstone_eval::rouge::RougeOptions;
use whetstone_eval::wordnet::WordNet;
use whetstone_eval::{score_with, ScoreOptions, Scores};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Mean loss and perplexity over response tokens, per row and overall
    Loss(LossArgs),
    /// BLEU, chrF, ROUGE, METEOR, exact match and F1 of predictions against references (no model needed)
    Score(ScoreArgs),
    /// A run's base and tuned model answer its held-out prompts; answers and figures are stored with the run
    Run(RunArgs),
    /// A stored evaluation: its figures, or every answer as JSON, CSV or JSON lines
    Show(ShowArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The run's id (see `whet runs list`)
    run: i64,
    /// Only the first N rows
    #[arg(long, value_name = "N")]
    rows: Option<usize>,
    /// Rows of this dataset (name or id) instead of what the run held out
    #[arg(long, conflicts_with = "data")]
    dataset: Option<String>,
    /// The dataset's version [default: the latest]
    #[arg(long, requires = "dataset")]
    version: Option<u32>,
    /// The dataset's split: train, val or test [default: test]
    #[arg(long, requires = "dataset")]
    split: Option<String>,
    /// Rows from a file (any format `whet data import` reads)
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// Another run answering the same prompts
    #[arg(long, value_name = "RUN")]
    compare: Option<i64>,
    /// Leave out the base model's answers
    #[arg(long)]
    no_base: bool,
    #[arg(long, default_value_t = whetstone_api::evaluation::DEFAULT_MAX_NEW_TOKENS)]
    max_new: usize,
    /// 0 picks the most likely token every time; above 0 samples, seeded
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    threads: Option<usize>,
    /// Print the evaluation as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    /// The evaluation's id (printed by `whet eval run`)
    id: i64,
    /// Every item with its answers, as JSON
    #[arg(long, conflicts_with_all = ["csv", "jsonl"])]
    json: bool,
    /// Every answer as CSV, one line per item and side
    #[arg(long, conflicts_with = "jsonl")]
    csv: bool,
    /// Every item as one JSON line
    #[arg(long)]
    jsonl: bool,
}

#[derive(Args)]
pub struct ScoreArgs {
    /// JSON lines, one `{"id": …, "text": …}` per prediction
    #[arg(long, value_name = "FILE")]
    predictions: PathBuf,
    /// JSON lines, `{"id": …, "text": …}`; an id may have several references
    #[arg(long, value_name = "FILE")]
    references: PathBuf,
    /// WordNet 3.0 database folder for METEOR's synonym stage [default: $WHETSTONE_WORDNET, else /usr/share/wordnet when present]
    #[arg(long, value_name = "DIR", conflicts_with = "no_wordnet")]
    wordnet: Option<PathBuf>,
    /// Run METEOR without its synonym stage even when WordNet is installed
    #[arg(long)]
    no_wordnet: bool,
    /// Stem words (Porter) before ROUGE, as `RougeScorer(use_stemmer=True)`
    #[arg(long)]
    stem: bool,
    /// The texts are labels (one reference each): also precision, recall and F1 per label
    #[arg(long)]
    labels: bool,
    /// Print the full report, with per-item scores, as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct LossArgs {
    #[arg(long)]
    model: PathBuf,
    /// A LoRA adapter folder (PEFT layout)
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// Rows to evaluate (any format and shape `whet data import` reads)
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 1024)]
    max_len: usize,
    #[arg(long)]
    threads: Option<usize>,
    /// Base weights: native (a GGUF's own quantization), none (dense) or nf4 (QLoRA)
    #[arg(long, default_value_t = QuantMode::Native)]
    quant: QuantMode,
    /// Print the full report as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(home: Option<&Path>, cmd: &EvalCommand) -> anyhow::Result<()> {
    match cmd {
        EvalCommand::Score(a) => score(a),
        EvalCommand::Run(a) => eval_run(&crate::open_api(home)?, a),
        EvalCommand::Show(a) => show(&crate::open_api(home)?, a),
        EvalCommand::Loss(a) => {
            crate::set_threads(a.threads);
            let model = training::load_model(&a.model, a.quant)?;
            let adapter = a.adapter.as_deref().map(|d| training::load_adapter(&model, d)).transpose()?;
            let report = training::eval_loss(&model, adapter.as_ref(), &a.data, a.max_len)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("loss {:.4}  perplexity {:.2}  over {} response tokens in {} rows", report.loss, report.perplexity, report.tokens, report.rows.len());
                if !report.dropped.is_empty() {
                    eprintln!("warning: {}", training::dropped_rows_message(&a.data, &report.dropped, a.max_len));
                }
            }
            Ok(())
        }
    }
}

fn score(a: &ScoreArgs) -> anyhow::Result<()> {
    let paired = read_pairs(&a.predictions, &a.references)?;
    let wordnet_dir = if a.no_wordnet { None } else { a.wordnet.clone().or_else(default_wordnet_dir) };
    let wordnet = wordnet_dir.as_deref().map(WordNet::open).transpose()?;
    let options = ScoreOptions {
        rouge: RougeOptions { use_stemmer: a.stem },
        meteor: MeteorOptions { wordnet, ..Default::default() },
    };
    let scores = score_with(&paired.predictions, &paired.references, &options)?;
    let labels = if a.labels {
        let mut truth = Vec::with_capacity(paired.ids.len());
        for (id, refs) in paired.ids.iter().zip(&paired.references) {
            match refs.as_slice() {
                [one] => truth.push(one.as_str()),
                _ => bail!("--labels needs exactly one reference per id; id `{id}` has {}", refs.len()),
            }
        }
        Some(label_report(&truth, &paired.predictions)?)
    } else {
        None
    };
    if a.json {
        let mut report = serde_json::to_value(&scores)?;
        if let Some(items) = report["items"].as_array_mut() {
            for (item, id) in items.iter_mut().zip(&paired.ids) {
                item["id"] = serde_json::Value::String(id.clone());
            }
        }
        report["wordnet"] = serde_json::json!(wordnet_dir);
        report["rouge_stemmer"] = serde_json::json!(a.stem);
        report["labels"] = serde_json::to_value(&labels)?;
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_scores(&scores, &paired.references, wordnet_dir.as_deref());
        if let Some(l) = &labels {
            print_labels(l);
        }
    }
    Ok(())
}

fn print_scores(s: &Scores, references: &[Vec<String>], wordnet: Option<&std::path::Path>) {
    let refs: usize = references.iter().map(Vec::len).sum();
    println!("{} predictions against {refs} references", s.count);
    println!("  BLEU        {:>8}   corpus, sacrebleu's defaults (13a tokens, exp smoothing)", s.bleu.printed());
    println!("  chrF        {:>8}   corpus, character 6-grams, beta 2", s.chrf.printed());
    println!("  ROUGE-1     {:>8.4}   mean F over items", s.rouge.rouge1);
    println!("  ROUGE-2     {:>8.4}", s.rouge.rouge2);
    println!("  ROUGE-L     {:>8.4}", s.rouge.rouge_l);
    println!("  ROUGE-Lsum  {:>8.4}", s.rouge.rouge_lsum);
    match wordnet {
        Some(dir) => println!("  METEOR      {:>8.4}   with WordNet synonyms from {}", s.meteor, dir.display()),
        None => println!("  METEOR      {:>8.4}   without synonyms (no WordNet; pass --wordnet DIR)", s.meteor),
    }
    println!("  exact match {:>8.4}   SQuAD normalisation", s.exact_match);
    println!("  F1          {:>8.4}   SQuAD token F1", s.f1);
}

fn print_labels(l: &LabelReport) {
    println!("\n  {:<20} {:>9} {:>9} {:>9} {:>8}", "label", "precision", "recall", "F1", "support");
    for s in &l.per_label {
        println!("  {:<20} {:>9.4} {:>9.4} {:>9.4} {:>8}", s.label, s.precision, s.recall, s.f1, s.support);
    }
    for (name, avg) in [("macro avg", l.macro_avg), ("micro avg", l.micro_avg), ("weighted avg", l.weighted_avg)] {
        println!("  {:<20} {:>9.4} {:>9.4} {:>9.4}", name, avg.precision, avg.recall, avg.f1);
    }
}

fn eval_run(api: &whetstone_api::Api, a: &RunArgs) -> anyhow::Result<()> {
    crate::set_threads(a.threads);
    let mut sides = vec![Side::Base, Side::Tuned];
    if a.no_base {
        sides.retain(|s| *s != Side::Base);
    }
    if a.compare.is_some() {
        sides.push(Side::Compare);
    }
    let req = EvalRequest {
        run: Some(a.run),
        compare_run: a.compare,
        dataset: a.dataset.clone(),
        version: a.version,
        split: a.split.clone(),
        data: a.data.clone(),
        limit: a.rows,
        sides: Some(sides),
        temperature: Some(a.temperature),
        top_p: Some(a.top_p),
        seed: Some(a.seed),
        max_new_tokens: Some(a.max_new),
        ..EvalRequest::default()
    };
    let evaluation = api.eval_run_with_progress(&req, &mut print_progress)?;
    eprintln!();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&evaluation)?);
    } else {
        print_evaluation(&evaluation);
    }
    Ok(())
}

fn show(api: &whetstone_api::Api, a: &ShowArgs) -> anyhow::Result<()> {
    if a.csv || a.jsonl {
        let format = if a.csv { TableFormat::Csv } else { TableFormat::Jsonl };
        print!("{}", api.eval_export(a.id, format)?);
    } else if a.json {
        println!("{}", serde_json::to_string_pretty(&api.eval_results(a.id)?)?);
    } else {
        print_evaluation(&api.get_evaluation(a.id)?);
    }
    Ok(())
}

fn print_progress(p: &EvalProgress) {
    let mut err = std::io::stderr();
    let width = 30;
    let filled = p.done * width / p.total.max(1);
    let _ = write!(err, "\r\x1b[2K{} [{}{}] {}/{}", p.stage, "#".repeat(filled), " ".repeat(width - filled), p.done, p.total);
    let _ = err.flush();
}

fn print_evaluation(e: &Evaluation) {
    println!("evaluation {}: {} items from {}", e.id, e.items, e.source);
    let opt = |v: Option<f64>, digits: usize| v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "-".into());
    let names: Vec<&str> = e.sides.iter().map(|s| s.side.as_str()).collect();
    print!("  {:<12}", "");
    for n in &names {
        print!(" {n:>10}");
    }
    println!();
    let row = |label: &str, f: &dyn Fn(&whetstone_api::evaluation::SideMetrics) -> String| {
        print!("  {label:<12}");
        for s in &e.sides {
            print!(" {:>10}", f(s));
        }
        println!();
    };
    row("perplexity", &|s| opt(s.perplexity, 3));
    row("BLEU", &|s| opt(s.text.as_ref().map(|t| t.bleu), 2));
    row("chrF", &|s| opt(s.text.as_ref().map(|t| t.chrf), 2));
    row("ROUGE-1", &|s| opt(s.text.as_ref().map(|t| t.rouge1), 4));
    row("ROUGE-2", &|s| opt(s.text.as_ref().map(|t| t.rouge2), 4));
    row("ROUGE-L", &|s| opt(s.text.as_ref().map(|t| t.rouge_l), 4));
    row("METEOR", &|s| opt(s.text.as_ref().map(|t| t.meteor), 4));
    row("exact match", &|s| opt(s.text.as_ref().map(|t| t.exact_match), 4));
    row("F1", &|s| opt(s.text.as_ref().map(|t| t.f1), 4));
    if e.sides.iter().any(|s| s.text.as_ref().is_some_and(|t| !t.meteor_synonyms)) {
        println!("  (METEOR without WordNet synonyms: install wordnet-base or set WHETSTONE_WORDNET)");
    }
    println!("every answer: whet eval show {} --csv", e.id);
}
