//! Parity with HF transformers + PEFT on tiny random models. The fixtures come from
//! `scripts/parity/make_fixtures.py` (run by hand; CI only reads them): logits, LoRA gradients and a
//! 20-step AdamW run with warmup, linear decay and clipping.

mod common;

use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use whetstone_engine::lora::Adapter;
use whetstone_engine::model::{Decoder, LoraCtx};
use whetstone_engine::optim::AdamWConfig;
use whetstone_engine::rng::Rng;
use whetstone_engine::schedule::{Schedule, ScheduleKind};
use whetstone_engine::train::{StepOptions, Trainer};
use whetstone_engine::ModelFiles;

use common::parity_dir as dir;

const MODELS: [&str; 6] = ["llama", "qwen2", "llama3_rope", "mistral", "gemma", "gemma2"];

struct Fixture {
    model: Decoder,
    io: HashMap<String, Tensor>,
    input_ids: Tensor,
    attention_mask: Tensor,
    loss_mask: Tensor,
}

fn load(name: &str) -> Fixture {
    let model = Decoder::load(&ModelFiles::HfDir(dir(name)), DType::F32, &Device::Cpu).unwrap();
    let common::ParityIo { io, input_ids, attention_mask, loss_mask, .. } = common::parity_io(name);
    Fixture { model, io, input_ids, attention_mask, loss_mask }
}

/// Largest absolute difference.
fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

/// Largest difference relative to the reference tensor's largest magnitude.
fn max_rel(ours: &Tensor, reference: &Tensor) -> f32 {
    let scale: f32 = reference.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
    max_abs(ours, reference) / scale.max(1e-30)
}

fn adapter(name: &str, sub: &str, model: &Decoder) -> Adapter {
    Adapter::load_peft(&dir(name).join(sub), &model.config, &Device::Cpu).unwrap()
}

#[test]
fn base_logits_match_transformers() {
    for name in MODELS {
        let f = load(name);
        let logits = f.model.forward(&f.input_ids, Some(&f.attention_mask), None).unwrap();
        let d = max_abs(&logits, &f.io["logits_base"]);
        eprintln!("{name}: base logits max |diff| {d:e}");
        assert!(d < 1e-4, "{name}: base logits differ by {d}");
    }
}

#[test]
fn peft_adapter_loads_with_equal_logits() {
    for name in MODELS {
        let f = load(name);
        let a = adapter(name, "adapter_init", &f.model);
        let ctx = LoraCtx { adapter: &a, train: false, dropout: None };
        let logits = f.model.forward(&f.input_ids, Some(&f.attention_mask), Some(&ctx)).unwrap();
        let d = max_abs(&logits, &f.io["logits_init"]);
        eprintln!("{name}: logits with PEFT adapter max |diff| {d:e}");
        assert!(d < 1e-4, "{name}: logits with the PEFT adapter differ by {d}");
        // And the adapter changes them: the comparison above is not the base model's.
        assert!(max_abs(&f.io["logits_init"], &f.io["logits_base"]) > 1e-3);
    }
}

#[test]
fn loss_and_adapter_gradients_match_peft() {
    for name in MODELS {
        let f = load(name);
        let a = adapter(name, "adapter_init", &f.model);
        let ctx = LoraCtx { adapter: &a, train: true, dropout: None };
        let (sum, n) = f.model.loss_sum(&f.input_ids, Some(&f.attention_mask), &f.loss_mask, Some(&ctx)).unwrap();
        let loss = (sum / n as f64).unwrap();
        let want: f32 = f.io["loss_init"].flatten_all().unwrap().get(0).unwrap().to_scalar().unwrap();
        let got: f32 = loss.to_scalar().unwrap();
        assert!(((got - want) / want).abs() < 1e-5, "{name}: loss {got} vs {want}");
        let grads = loss.backward().unwrap();
        let mut count = 0;
        let mut worst = 0f32;
        for (key, var) in a.named_vars() {
            let reference = &f.io[&format!("grad.{key}")];
            let g = grads.get(var.as_tensor()).unwrap();
            let r = max_rel(g, reference);
            worst = worst.max(r);
            assert!(r < 1e-4, "{name}: gradient of {key} differs by {r} (relative)");
            count += 1;
        }
        assert_eq!(count, 28, "{name}: every adapter tensor compared");
        eprintln!("{name}: loss rel diff {:e}, worst gradient rel diff {worst:e}", ((got - want) / want).abs());
    }
}

#[test]
fn twenty_adamw_steps_match_torch() {
    for name in MODELS {
        let f = load(name);
        let a = adapter(name, "adapter_init", &f.model);
        let schedule = Schedule { kind: ScheduleKind::Linear, base_lr: 2e-3, warmup_steps: 3, total_steps: 20 };
        let adamw = AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 };
        let opts = StepOptions { max_grad_norm: Some(1.0), grad_checkpoint: false };
        let mut t = Trainer::new(&f.model, a, adamw, schedule, opts, Rng::new(0)).unwrap();
        let batch = whetstone_engine::batch::Batch {
            input_ids: f.input_ids.clone(),
            attention_mask: f.attention_mask.clone(),
            loss_mask: f.loss_mask.clone(),
            tokens: 0,
            targets: f.loss_mask.sum_all().unwrap().to_scalar::<u32>().unwrap() as usize,
        };
        let losses: Vec<f32> = f.io["losses"].to_vec1().unwrap();
        let norms: Vec<f32> = f.io["grad_norms"].to_vec1().unwrap();
        let lrs: Vec<f32> = f.io["lrs"].to_vec1().unwrap();
        let mut worst = 0f64;
        for i in 0..20 {
            let r = t.step(std::slice::from_ref(&batch)).unwrap();
            let rel = ((r.loss - losses[i] as f64) / losses[i] as f64).abs();
            worst = worst.max(rel);
            assert!(rel < 1e-5, "{name}: step {i} loss {} vs {} (rel {rel})", r.loss, losses[i]);
            let nrel = ((r.grad_norm - norms[i] as f64) / norms[i] as f64).abs();
            assert!(nrel < 1e-4, "{name}: step {i} grad norm {} vs {}", r.grad_norm, norms[i]);
            assert!((r.lr - lrs[i] as f64).abs() <= 1e-9 + 1e-6 * lrs[i] as f64, "{name}: step {i} lr {} vs {}", r.lr, lrs[i]);
        }
        let ctx = LoraCtx { adapter: &t.adapter, train: false, dropout: None };
        let logits = f.model.forward(&f.input_ids, Some(&f.attention_mask), Some(&ctx)).unwrap();
        let d = max_abs(&logits, &f.io["logits_final"]);
        eprintln!("{name}: 20-step loss curve worst rel diff {worst:e}, final logits max |diff| {d:e}");
        assert!(d < 1e-4, "{name}: logits after 20 steps differ by {d}");
        let fin = adapter(name, "adapter_final", &f.model);
        for ((k, ours), (_, theirs)) in t.adapter.named_vars().into_iter().zip(fin.named_vars()) {
            let r = max_rel(ours.as_tensor(), theirs.as_tensor());
            assert!(r < 1e-4, "{name}: trained {k} differs by {r} (relative)");
        }
    }
}

#[test]
fn saved_adapter_reloads_identically_in_peft_layout() {
    let f = load("qwen2");
    let a = adapter("qwen2", "adapter_init", &f.model);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("adapter");
    a.save_peft(&out, "tiny-qwen2", "qwen2").unwrap();
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("adapter_config.json")).unwrap()).unwrap();
    for (k, v) in [("peft_type", "LORA"), ("task_type", "CAUSAL_LM"), ("bias", "none")] {
        assert_eq!(cfg[k], v, "{k}");
    }
    assert_eq!(cfg["r"], 4);
    assert_eq!(cfg["use_rslora"], true);
    assert_eq!(cfg["fan_in_fan_out"], false);
    let data = std::fs::read(out.join("adapter_model.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&data).unwrap();
    assert_eq!(meta.metadata().as_ref().and_then(|m| m.get("format")).map(String::as_str), Some("pt"));
    let st = safetensors::SafeTensors::deserialize(&data).unwrap();
    let a_shape = st.tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").unwrap().shape().to_vec();
    let b_shape = st.tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").unwrap().shape().to_vec();
    assert_eq!(a_shape, vec![4, 64]);
    assert_eq!(b_shape, vec![64, 4]);
    let back = Adapter::load_peft(&out, &f.model.config, &Device::Cpu).unwrap();
    for ((k, x), (_, y)) in a.named_vars().into_iter().zip(back.named_vars()) {
        assert_eq!(max_abs(x.as_tensor(), y.as_tensor()), 0.0, "{k}");
    }
}

#[test]
fn the_new_fixtures_exercise_what_sets_their_families_apart() {
    let mistral = load("mistral").model.config;
    assert_eq!(mistral.sliding_window, Some(5));
    assert!(mistral.sliding_layers.iter().all(|&s| s));
    let gemma = load("gemma").model.config;
    assert_eq!((gemma.num_kv_heads, gemma.head_dim), (1, 24), "multi-query, head size not hidden/heads");
    assert_ne!(gemma.head_dim * gemma.num_heads, gemma.hidden_size);
    assert!(gemma.tie_word_embeddings);
    let g2 = load("gemma2").model.config;
    assert_eq!(g2.sliding_window, Some(4));
    assert_eq!(g2.sliding_layers, vec![true, false]);
    assert_eq!(g2.query_pre_attn_scalar, Some(20.0));
    assert_eq!((g2.attn_logit_softcapping, g2.final_logit_softcapping), (Some(0.5), Some(1.0)));
    let t = load("gemma2").input_ids.dim(1).unwrap();
    assert!(t > 5, "the batch is longer than the windows");
    // Mistral's window really cuts: without it the logits move far past the tolerance.
    let f = load("mistral");
    let mut m = Decoder::load(&ModelFiles::HfDir(dir("mistral")), DType::F32, &Device::Cpu).unwrap();
    m.config.sliding_window = None;
    let d = max_abs(&m.forward(&f.input_ids, Some(&f.attention_mask), None).unwrap(), &f.io["logits_base"]);
    eprintln!("mistral without its sliding window: logits max |diff| {d:e}");
    assert!(d > 1e-3, "{d}");
}

/// Logits of `model` with one config field changed, against the fixture's: each Gemma 2 particular
/// must move the logits, so the parity above could not pass with it wrong.
#[test]
fn each_gemma2_particular_changes_the_logits() {
    let f = load("gemma2");
    let reference = &f.io["logits_base"];
    let d = |m: &Decoder| max_abs(&m.forward(&f.input_ids, Some(&f.attention_mask), None).unwrap(), reference);
    let base = d(&f.model);
    assert!(base < 1e-4);
    let variants: [(&str, fn(&mut whetstone_engine::ModelConfig)); 5] = [
        ("no attention soft cap", |c| c.attn_logit_softcapping = None),
        ("no final soft cap", |c| c.final_logit_softcapping = None),
        ("no sliding window", |c| c.sliding_layers = vec![false; c.num_layers]),
        ("scale from head_dim", |c| c.query_pre_attn_scalar = None),
        ("window on every layer", |c| c.sliding_layers = vec![true; c.num_layers]),
    ];
    for (what, change) in variants {
        let mut m = Decoder::load(&ModelFiles::HfDir(dir("gemma2")), DType::F32, &Device::Cpu).unwrap();
        change(&mut m.config);
        let diff = d(&m);
        eprintln!("gemma2 with {what}: logits max |diff| {diff:e}");
        assert!(diff > 1e-3, "{what} leaves the logits within {diff}");
    }
}

/// The same bases as llama.cpp's converter writes them (`model.gguf`, norms with 1 added, its names
/// and keys) give transformers' logits.
#[test]
fn gemma_gguf_from_llama_cpps_converter_gives_the_hf_logits() {
    for name in ["gemma", "gemma2"] {
        let f = load(name);
        let files = ModelFiles::Gguf(dir(name).join("model.gguf"));
        let mut m = Decoder::load(&files, DType::F32, &Device::Cpu).unwrap();
        let hf = &f.model.config;
        assert_eq!(m.config.architecture, hf.architecture);
        assert_eq!(m.config.head_dim, hf.head_dim);
        assert_eq!(m.config.sliding_window, hf.sliding_window);
        assert_eq!(m.config.sliding_layers, hf.sliding_layers);
        assert_eq!(m.config.attn_logit_softcapping, hf.attn_logit_softcapping);
        assert_eq!(m.config.final_logit_softcapping, hf.final_logit_softcapping);
        if name == "gemma2" {
            // GGUF carries no query_pre_attn_scalar: llama.cpp uses the head size, as the loader does.
            assert_eq!(m.config.query_pre_attn_scalar, Some(m.config.head_dim as f64));
            m.config.query_pre_attn_scalar = hf.query_pre_attn_scalar;
        }
        let logits = m.forward(&f.input_ids, Some(&f.attention_mask), None).unwrap();
        let d = max_abs(&logits, &f.io["logits_base"]);
        eprintln!("{name}: GGUF base logits max |diff| {d:e}");
        assert!(d < 1e-4, "{name}: GGUF logits differ by {d}");
        // The file's norms hold 1 + weight; the loader hands out HF's weight.
        let blk = &m.blocks[0].input_norm;
        assert_eq!(max_abs(blk, &f.model.blocks[0].input_norm), 0.0);
    }
}

/// Generation with the KV cache, one token at a time past the sliding windows, gives transformers'
/// logits at every position, soft caps included; greedy generation picks their argmax.
#[test]
fn cached_generation_gives_transformers_logits() {
    for name in ["mistral", "gemma", "gemma2"] {
        let f = load(name);
        // Row 0 has no padding.
        let ids: Vec<u32> = f.input_ids.get(0).unwrap().to_vec1().unwrap();
        let want = f.io["logits_base"].get(0).unwrap();
        let mut cache = whetstone_engine::KvCache::default();
        let prompt = 3;
        let first = f.model.forward_cached(&Tensor::from_vec(ids[..prompt].to_vec(), (1, prompt), &Device::Cpu).unwrap(), &mut cache, None).unwrap();
        let mut worst = max_abs(&first.squeeze(0).unwrap(), &want.get(prompt - 1).unwrap());
        for (k, &id) in ids.iter().enumerate().skip(prompt) {
            let out = f.model.forward_cached(&Tensor::from_vec(vec![id], (1, 1), &Device::Cpu).unwrap(), &mut cache, None).unwrap();
            worst = worst.max(max_abs(&out.squeeze(0).unwrap(), &want.get(k).unwrap()));
        }
        eprintln!("{name}: cached generation logits max |diff| {worst:e} over {} positions", ids.len());
        assert!(worst < 1e-4, "{name}: cached logits differ by {worst}");
        let opts = whetstone_engine::generate::SamplingOptions { max_new_tokens: 1, ..Default::default() };
        let out = whetstone_engine::generate::generate(&f.model, &ids, &[], &opts, None, |_| true).unwrap();
        let last: Vec<f32> = want.get(ids.len() - 1).unwrap().to_vec1().unwrap();
        let argmax = last.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0 as u32;
        assert_eq!(out, vec![argmax], "{name}: greedy pick");
    }
}
