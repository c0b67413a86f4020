//! `whet plan`: will a training job fit in memory, and what to change when it will not.

use crate::human_bytes;
use clap::Args;
use std::path::PathBuf;
use whetstone_api::plan::PlanRequest;
use whetstone_api::Api;

#[derive(Args)]
pub struct PlanArgs {
    /// A model path, an installed model (id, name or hub id) or a catalog repo id
    #[arg(long)]
    model: String,
    /// Training data (any file `whet data import` reads): plan with its real token lengths
    #[arg(long)]
    data: Option<PathBuf>,
    /// How the base is held: f32, bf16, nf4, q4_k … [default: what the engine does]
    #[arg(long)]
    base: Option<String>,
    /// Every `whet train` setting (batch, max-len, lora-r, targets, quant, …), as `whet train` takes it
    #[command(flatten)]
    settings: crate::train::SettingsArgs,
    #[arg(long)]
    json: bool,
}

pub fn run(api: &Api, a: &PlanArgs) -> anyhow::Result<()> {
    let s = a.settings.settings(api, a.data.as_deref())?;
    let req = PlanRequest { model: a.model.clone(), data: a.data.clone(), settings: s, device: None, base: a.base.clone() };
    let plan = api.plan(&req)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(());
    }
    let m = &plan.memory;
    println!("{} ({}, {} parameters) on {}", plan.model, plan.architecture, crate::list::human_count(plan.parameters), plan.device);
    println!("batch {} × {} tokens, base held as {:?}", plan.batch, plan.seq_len, plan.base);
    if let Some(d) = &plan.dataset {
        println!("dataset: {} examples, {:.0} tokens on average, 95% within {}, longest {}{}", d.examples, d.mean_tokens, d.p95_tokens, d.max_tokens,
            if d.truncated > 0 { format!(", {} cut at max-len", d.truncated) } else { String::new() });
        if d.dropped > 0 {
            println!(
                "  {} example{} no answer token within max-len and will be left out; --max-len {} keeps every one",
                d.dropped,
                if d.dropped == 1 { " has" } else { "s have" },
                d.length_keeping_all
            );
        }
    }
    for (what, b) in [
        ("base weights", m.base_weights),
        ("adapters + optimizer", m.adapters_and_optimizer),
        ("activations", m.activations),
        ("logits", m.logits),
        ("workspace", m.workspace),
    ] {
        println!("  {what:<22} {:>10}", human_bytes(b));
    }
    println!("  {:<22} {:>10}   (at {})", "peak", human_bytes(m.peak), m.peak_phase);
    println!("{}: {} free of {} on {}", plan.fit_label.to_uppercase(), human_bytes(plan.device_free_bytes), human_bytes(plan.device_total_bytes), plan.device);
    for r in &plan.recommendations {
        println!("  try: {:<60} → {:>10}  {}{}", r.change, human_bytes(r.peak_bytes), r.fit.label(), if r.engine_supported { "" } else { " (not trainable by Whetstone yet)" });
    }
    if let Some(t) = &plan.time {
        let secs = |s: f64| if s < 1.0 { format!("{s:.3} s") } else { format!("{s:.0} s") };
        let steps = if t.steps == 1 { "1 step".to_string() } else { format!("{} steps", t.steps) };
        println!("time: {steps} of about {} tokens; at least {} of arithmetic at the {:.1} GFLOP/s measured here", t.tokens_per_step, secs(t.at_least_s), t.measured_flops / 1e9);
        if let Some(e) = &t.from_earlier_run {
            println!("  about {} at the pace of run {} with this model ({:.0} tokens/s)", secs(e.seconds), e.run, e.tokens_per_s);
        }
    }
    for n in &plan.notes {
        println!("note: {n}");
    }
    Ok(())
}
