//! The one source of training defaults: what each `whet train` setting means in plain words, the
//! range in which it is safe, and the presets (quick test, balanced, thorough) for a dataset of a
//! given size on this machine. The app's wizard reads it through the `train_defaults` command;
//! `whet train --preset` and its warnings read it directly.

use crate::error::{Error, Result};
use crate::Api;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use whetstone_engine::device::DeviceChoice;
use whetstone_engine::run::TrainSettings;
use whetstone_hw::Hardware;

/// What kind of value a setting holds, so a form can offer the right control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum SettingKind {
    Integer,
    Number,
    Boolean,
    Choice,
    Text,
}

/// One setting of [`TrainSettings`], described for someone who has never trained a model.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SettingDoc {
    /// The key as `whet train --config` and the API take it (`lora-r`).
    pub key: &'static str,
    /// The `whet train` flag.
    pub flag: String,
    pub label: &'static str,
    /// One line in plain words.
    pub help: &'static str,
    pub kind: SettingKind,
    /// The value may be left empty (`null`), which has the meaning `help` gives.
    pub optional: bool,
    pub choices: Vec<&'static str>,
    /// Values outside `min..=max` are refused.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Values outside `safe_min..=safe_max` train, with a warning.
    pub safe_min: Option<f64>,
    pub safe_max: Option<f64>,
    /// The warning below `safe_min`.
    pub below: Option<&'static str>,
    /// The warning above `safe_max`.
    pub above: Option<&'static str>,
    /// Shown only under "Advanced" in the app.
    pub advanced: bool,
}

/// A setting outside its safe range.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct SettingWarning {
    pub key: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum PresetName {
    QuickTest,
    Balanced,
    Thorough,
}

impl PresetName {
    pub const ALL: [PresetName; 3] = [PresetName::QuickTest, PresetName::Balanced, PresetName::Thorough];

    pub fn parse(s: &str) -> Option<PresetName> {
        match s.replace('-', "_").as_str() {
            "quick_test" | "quick" => Some(PresetName::QuickTest),
            "balanced" => Some(PresetName::Balanced),
            "thorough" => Some(PresetName::Thorough),
            _ => None,
        }
    }
}

/// Settings chosen for a dataset's size and this machine, with the reasons in plain words.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Preset {
    pub name: PresetName,
    pub label: &'static str,
    /// What the preset is for.
    pub summary: &'static str,
    /// How its numbers follow from the data and the hardware.
    pub reasons: Vec<String>,
    pub settings: TrainSettings,
}

#[derive(Debug, Clone, Default, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct DefaultsRequest {
    /// Training examples (rows of the train split); presets assume a small dataset when absent.
    #[serde(default)]
    pub examples: Option<u64>,
    /// Length in tokens that 95% of the examples fit in (from `data_stats`), to choose `max-len`.
    #[serde(default)]
    pub p95_tokens: Option<u64>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct TrainDefaults {
    /// Every setting's default, as `whet train` uses it when nothing is given.
    pub defaults: TrainSettings,
    /// Every setting, in the order a form shows them.
    pub fields: Vec<SettingDoc>,
    pub presets: Vec<Preset>,
    /// The machine the presets were sized for, in words.
    pub hardware: String,
}

/// Examples a dataset is assumed to hold when its size is not given.
const ASSUMED_EXAMPLES: u64 = 100;

#[allow(clippy::too_many_arguments)]
fn doc(
    key: &'static str,
    label: &'static str,
    help: &'static str,
    kind: SettingKind,
    (min, max): (Option<f64>, Option<f64>),
    (safe_min, safe_max): (Option<f64>, Option<f64>),
    (below, above): (Option<&'static str>, Option<&'static str>),
    advanced: bool,
) -> SettingDoc {
    let flag = match key {
        // The flag says what turning it off does; the setting is on by default.
        "load-best-at-end" => "--no-load-best".to_string(),
        _ => format!("--{key}"),
    };
    SettingDoc { key, flag, label, help, kind, optional: false, choices: vec![], min, max, safe_min, safe_max, below, above, advanced }
}

/// Every setting of [`TrainSettings`], described. The basic ones come first.
pub fn setting_docs() -> Vec<SettingDoc> {
    use SettingKind::*;
    const N: (Option<f64>, Option<f64>) = (None, None);
    const NO: (Option<&str>, Option<&str>) = (None, None);
    let optional = |mut d: SettingDoc| {
        d.optional = true;
        d
    };
    let choices = |mut d: SettingDoc, c: &[&'static str]| {
        d.choices = c.to_vec();
        d
    };
    vec![
        doc("epochs", "Passes over the data", "How many times the model reads every example. More passes learn more, until the model starts repeating the examples word for word.", Integer, (Some(1.0), None), (None, Some(10.0)), (None, Some("More than 10 passes over the same examples usually makes the model repeat them word for word instead of learning the task.")), false),
        optional(doc("steps", "Training steps", "Stop after this many steps instead of counting passes over the data. Leave empty to use the passes above.", Integer, (Some(1.0), None), N, NO, false)),
        doc("lr", "Learning rate", "How big a change each step makes. Too small learns nothing; too large makes training unstable.", Number, (Some(0.0), None), (Some(1e-5), Some(1e-3)), (Some("Below 0.00001 the adapter barely changes: the run may teach the model nothing."), Some("Above 0.001 training often becomes unstable: the loss jumps or climbs instead of falling.")), false),
        doc("batch", "Examples per step", "How many examples the model reads at once. More uses more memory; the result of a step is the same with accumulation below.", Integer, (Some(1.0), None), (None, Some(32.0)), (None, Some("More than 32 examples at once needs a lot of memory; use accumulation instead to learn from more examples per step.")), false),
        doc("max-len", "Longest example (tokens)", "Examples longer than this are cut. Longer limits keep more of each example but need more memory.", Integer, (Some(2.0), None), (Some(64.0), Some(4096.0)), (Some("Fewer than 64 tokens cuts most examples short, and the model learns from fragments."), Some("More than 4096 tokens per example needs a great deal of memory; most computers run out.")), false),
        doc("lora-r", "Adapter size (rank)", "How much the adapter can learn. Larger adapters learn more detail but take more memory and time.", Integer, (Some(1.0), None), (Some(4.0), Some(64.0)), (Some("An adapter of rank below 4 can learn very little."), Some("Ranks above 64 rarely help, and take more memory and time.")), false),
        choices(doc("device", "Where to train", "auto picks the best this computer has (an NVIDIA GPU when the GPU worker is installed, else the processor); or cpu, cuda (the first NVIDIA GPU), cuda:1 for another, metal.", Choice, N, N, NO, false), &["auto", "cpu", "cuda", "metal"]),
        doc("grad-accum", "Steps accumulated", "Reads this many groups of examples before changing the model: a larger step without the memory of a larger batch.", Integer, (Some(1.0), None), (None, Some(64.0)), (None, Some("Accumulating more than 64 groups makes each step very slow for little gain.")), true),
        doc("lora-alpha", "Adapter strength (alpha)", "How strongly the adapter's changes count. Usually twice the adapter size.", Number, (Some(0.0), None), (Some(1.0), Some(256.0)), (Some("Below 1 the adapter's changes hardly count."), Some("Above 256 the adapter's changes are scaled up so much that training can become unstable.")), true),
        doc("lora-dropout", "Adapter dropout", "Share of the adapter's inputs ignored at random while training, so it does not learn the examples by heart. From 0 to below 1.", Number, (Some(0.0), Some(0.999)), (None, Some(0.3)), (None, Some("Ignoring more than 30% of the inputs slows learning a lot.")), true),
        doc("targets", "Layers that get an adapter", "Which parts of each layer learn: q, k, v, o (attention) and gate, up, down (the feed-forward part), separated by commas.", Text, N, N, NO, true),
        doc("rslora", "Rank-stabilised scaling (rsLoRA)", "Scales the adapter by alpha divided by the square root of its size instead of by its size: helps large adapters learn.", Boolean, N, N, NO, true),
        choices(doc("scheduler", "Learning-rate schedule", "How the learning rate changes during the run: kept constant, lowered in a straight line, or lowered along a curve (cosine).", Choice, N, N, NO, true), &["constant", "linear", "cosine"]),
        doc("warmup", "Warm-up steps", "Steps at the start during which the learning rate rises from zero, so the first steps do not jolt the model.", Integer, (Some(0.0), None), N, NO, true),
        optional(doc("warmup-ratio", "Warm-up share", "Warm-up as a share of all steps (0.03 is 3%), used when warm-up steps is 0. Leave empty for none.", Number, (Some(0.0), Some(0.999)), (None, Some(0.2)), (None, Some("Warming up for more than a fifth of the run leaves little time at the full learning rate.")), true)),
        doc("seed", "Random seed", "The same seed, data and settings give the same result on the same computer.", Integer, (Some(0.0), None), N, NO, true),
        doc("grad-checkpoint", "Save memory (gradient checkpointing)", "Recomputes parts of the model instead of keeping them: much less memory, steps about a third slower.", Boolean, N, N, NO, true),
        doc("weight-decay", "Weight decay", "Pulls the adapter gently back towards zero each step, which can keep it from learning the examples by heart.", Number, (Some(0.0), None), (None, Some(0.1)), (None, Some("Above 0.1 pulls the adapter back so hard that it learns slowly.")), true),
        doc("max-grad-norm", "Largest change per step", "Limits how big one step's change can be, so one odd example cannot undo the training. 0 turns the limit off.", Number, (Some(0.0), None), (None, Some(10.0)), (None, Some("A limit above 10 hardly ever applies, so one odd example can throw training off.")), true),
        optional(doc("threads", "Processor threads", "How many processor cores training uses. Leave empty to use every core Whetstone may use.", Integer, N, N, NO, true)),
        choices(doc("quant", "How the base model is held", "native: as the file has it (a GGUF file stays compressed); none: full precision; nf4: 4-bit (QLoRA), the least memory.", Choice, N, N, NO, true), &["native", "none", "nf4"]),
        doc("eval-every", "Check every (steps)", "Measures the loss on the validation examples every this many steps, and at the end. 0 checks only at the end.", Integer, (Some(0.0), None), N, NO, true),
        doc("save-every", "Save every (steps)", "Saves a checkpoint every this many steps, so a run can resume after a crash. 0 saves only when pausing or stopping.", Integer, (Some(0.0), None), N, NO, true),
        doc("keep-checkpoints", "Checkpoints kept", "How many of the newest checkpoints are kept on disk besides the best one.", Integer, (Some(0.0), None), N, NO, true),
        doc("patience", "Stop early after", "Stops when this many checks in a row found no improvement. 0 never stops early.", Integer, (Some(0.0), None), N, NO, true),
        doc("min-delta", "Smallest improvement", "How much lower the validation loss must be to count as an improvement.", Number, (Some(0.0), None), N, NO, true),
        doc("load-best-at-end", "Keep the best adapter", "Ends with the adapter from the best check instead of the last step.", Boolean, N, N, NO, true),
        doc("max-bad-steps", "Bad steps allowed", "Stops after this many steps in a row whose numbers went wrong (not a finite number).", Integer, (Some(1.0), None), N, NO, true),
        doc("strict-rows", "Refuse rows that do not fit", "Stops before training when an example has no answer within the longest example length, instead of leaving it out and saying so.", Boolean, N, N, NO, true),
        doc("truncate-prompt", "Cut long questions, not answers", "Fits long examples by cutting the start of the question, keeping the answer, instead of cutting the end.", Boolean, N, N, NO, true),
    ]
}

/// Settings of `s` outside their safe range, each with its warning in plain words.
pub fn check(s: &TrainSettings) -> Vec<SettingWarning> {
    let values = serde_json::to_value(s).unwrap_or(Value::Null);
    let mut out = Vec::new();
    for d in setting_docs() {
        let Some(x) = values.get(d.key).and_then(Value::as_f64) else { continue };
        let shown = values[d.key].to_string();
        if let (Some(lo), Some(why)) = (d.safe_min, d.below) {
            if x < lo {
                out.push(SettingWarning { key: d.key, message: format!("{} = {shown}: {why}", d.key) });
            }
        }
        if let (Some(hi), Some(why)) = (d.safe_max, d.above) {
            if x > hi {
                out.push(SettingWarning { key: d.key, message: format!("{} = {shown}: {why}", d.key) });
            }
        }
    }
    out
}

/// Examples per micro-batch this machine handles comfortably, and why.
fn micro_batch(hw: &Hardware) -> (usize, bool, String) {
    const GB: u64 = 1 << 30;
    if let Some(g) = hw.gpus.iter().max_by_key(|g| g.vram_free_bytes) {
        let free = g.vram_free_bytes;
        let b = if free >= 40 * GB { 16 } else if free >= 16 * GB { 8 } else { 4 };
        return (b, free < 8 * GB, format!("{b} examples at once on the {} ({} GB free)", g.name, free / GB));
    }
    let free = hw.ram_available_bytes;
    let b = if free >= 16 * GB { 4 } else { 2 };
    let words = format!("{b} examples at once on the processor ({} cores, {} GB of memory free; no GPU)", hw.cpu_cores, free / GB);
    (b, free < 8 * GB, words)
}

/// `max-len` for examples of which 95% fit in `p95` tokens: the next power of two, 64 to 2048.
fn length_for(p95: Option<u64>) -> Option<usize> {
    p95.map(|t| (t.max(1) as usize).next_power_of_two().clamp(64, 2048))
}

/// The three presets for `examples` training rows on `hw`.
pub fn presets(examples: Option<u64>, p95_tokens: Option<u64>, hw: &Hardware) -> Vec<Preset> {
    let n = examples.unwrap_or(ASSUMED_EXAMPLES).max(1) as usize;
    let (micro, save_memory, machine) = micro_batch(hw);
    let size = match examples {
        Some(_) => format!("{n} training example{}", if n == 1 { "" } else { "s" }),
        None => format!("no data chosen yet, so sized for about {ASSUMED_EXAMPLES} examples"),
    };
    let max_len = length_for(p95_tokens);
    // Small datasets need more passes to learn anything, large ones fewer to avoid repeating.
    let passes = |small: u64, medium: u64, large: u64| if n < 200 { small } else if n < 2000 { medium } else { large };
    let build = |per_step: usize, f: &dyn Fn(&mut TrainSettings)| -> (TrainSettings, Vec<String>) {
        let mut s = TrainSettings::default();
        // Never more examples per step than the data holds: each step would repeat some.
        let per_step = per_step.min(n).max(1);
        s.batch = micro.min(per_step);
        s.grad_accum = (per_step / s.batch).max(1);
        s.grad_checkpoint = save_memory;
        if let Some(l) = max_len {
            s.max_len = l;
        }
        f(&mut s);
        let mut why = vec![format!("{size}; {machine}")];
        if s.grad_accum > 1 {
            why.push(format!("{} examples per step: {} at once, {} times over", s.batch * s.grad_accum, s.batch, s.grad_accum));
        } else {
            why.push(format!("{} example{} per step", s.batch, if s.batch == 1 { "" } else { "s" }));
        }
        if save_memory {
            why.push("little memory is free, so parts of the model are recomputed instead of kept".into());
        }
        if let (Some(p), Some(l)) = (p95_tokens, max_len) {
            why.push(format!("95% of the examples fit in {p} tokens, so examples are cut at {l}"));
        }
        (s, why)
    };

    let (quick, mut quick_why) = build(4, &|s| {
        // Enough steps to see the loss move, few enough that each example is seen at most 10 times.
        let per_step = (s.batch * s.grad_accum) as u64;
        s.steps = Some((10 * n as u64 / per_step).clamp(1, 20));
        s.lora_r = 8;
        s.lora_alpha = 16.0;
        s.eval_every = 10;
        s.save_every = 10;
    });
    quick_why.push(format!("{} steps: enough to see the loss fall and check that everything works", quick.steps.unwrap_or(0)));

    let (balanced, mut balanced_why) = build(8, &|s| {
        s.epochs = passes(3, 2, 1);
        s.lora_r = 16;
        s.lora_alpha = 32.0;
        s.lr = 2e-4;
        s.warmup_ratio = Some(0.03);
        let total = s.total_steps(n);
        s.eval_every = (total / 10).max(10);
        s.save_every = s.eval_every;
    });
    balanced_why.push(format!("{} passes over the data, {} steps", balanced.epochs, balanced.total_steps(n)));

    let (thorough, mut thorough_why) = build(16, &|s| {
        s.epochs = passes(5, 3, 2);
        s.lora_r = 32;
        s.lora_alpha = 64.0;
        s.lr = 1e-4;
        s.warmup_ratio = Some(0.05);
        let total = s.total_steps(n);
        s.eval_every = (total / 20).max(10);
        s.save_every = s.eval_every;
        s.patience = 5;
    });
    thorough_why.push(format!("{} passes over the data, {} steps; stops early when checks stop improving", thorough.epochs, thorough.total_steps(n)));

    vec![
        Preset { name: PresetName::QuickTest, label: "Quick test", summary: "A few minutes: checks that the data, the model and the settings work before a long run.", reasons: quick_why, settings: quick },
        Preset { name: PresetName::Balanced, label: "Balanced", summary: "A good first real run: learns the task without taking all day.", reasons: balanced_why, settings: balanced },
        Preset { name: PresetName::Thorough, label: "Thorough", summary: "A larger adapter, a gentler learning rate and more passes: slower, often a little better.", reasons: thorough_why, settings: thorough },
    ]
}

impl Api {
    /// This machine as presets see it: only the GPU `auto` trains on, none when runs train on the
    /// processor (a GPU without its worker or driver gives no room to a run).
    fn training_hardware(&self) -> Result<Hardware> {
        let mut hw = self.hardware()?;
        let auto = crate::backend::select(DeviceChoice::Auto, &crate::backend::detect(&hw, &self.workers_or_self()))?;
        let cuda: Vec<_> = hw.gpus.iter().filter(|g| g.backend == "cuda").cloned().collect();
        hw.gpus = match auto.device {
            DeviceChoice::Cuda(i) => cuda.into_iter().nth(i.unwrap_or(0)).into_iter().collect(),
            DeviceChoice::Metal => hw.gpus.iter().filter(|g| g.backend == "metal").take(1).cloned().collect(),
            _ => Vec::new(),
        };
        Ok(hw)
    }

    /// The defaults, every setting described, and the presets for the data and this machine.
    pub fn train_defaults(&self, req: &DefaultsRequest) -> Result<TrainDefaults> {
        let hw = self.training_hardware()?;
        let (_, _, machine) = micro_batch(&hw);
        Ok(TrainDefaults { defaults: TrainSettings::default(), fields: setting_docs(), presets: presets(req.examples, req.p95_tokens, &hw), hardware: machine })
    }

    /// The settings of preset `name` for `examples` training rows on this machine.
    pub fn preset(&self, name: &str, examples: Option<u64>) -> Result<TrainSettings> {
        let Some(want) = PresetName::parse(name) else {
            return Err(Error::InvalidInput(format!("unknown preset `{name}`: quick-test, balanced or thorough")));
        };
        let hw = self.training_hardware()?;
        let p = presets(examples, None, &hw).into_iter().find(|p| p.name == want);
        p.map(|p| p.settings).ok_or_else(|| Error::Internal(format!("preset {name} missing")))
    }
}
