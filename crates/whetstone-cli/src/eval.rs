//! `whet eval loss`: how well a model (with or without an adapter) predicts the responses of a dataset.
//! `whet eval score`: every text metric over given predictions and references, without a model, so that
//! any figure the app shows can be reproduced from two files.

use anyhow::bail;
use clap::{Args, Subcommand};
use std::path::PathBuf;
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

pub fn run(cmd: &EvalCommand) -> anyhow::Result<()> {
    match cmd {
        EvalCommand::Score(a) => score(a),
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
