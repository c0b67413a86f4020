//! Gradients reach every adapter tensor and no frozen tensor, and the hand-written backward passes
//! agree with finite differences.

use candle_core::{DType, Device, Tensor};
use std::cell::RefCell;
use whetstone_engine::batch::collate;
use whetstone_engine::lora::{Adapter, LoraConfig, Target};
use whetstone_engine::model::{Decoder, LoraCtx};
use whetstone_engine::optim::AdamWConfig;
use whetstone_engine::rng::Rng;
use whetstone_engine::schedule::{Schedule, ScheduleKind};
use whetstone_engine::train::{StepOptions, Trainer};
use whetstone_engine::weights::BaseWeights;
use whetstone_engine::{Architecture, ModelConfig};

/// Every family, each with its particulars on at this size (see `ModelConfig::tiny`): Mistral's and
/// Gemma 2's windows are shorter than the test batches, Gemma 2's soft caps bend the scores.
const ALL_ARCHS: [Architecture; 5] = [Architecture::Llama, Architecture::Qwen2, Architecture::Mistral, Architecture::Gemma, Architecture::Gemma2];

fn tiny(arch: Architecture, dtype: DType) -> Decoder {
    let cfg = ModelConfig::tiny(arch);
    let mut w = BaseWeights::random(&cfg, 7, &Device::Cpu).unwrap();
    for t in w.tensors.values_mut() {
        *t = t.to_dtype(dtype).unwrap();
    }
    Decoder::from_weights(w).unwrap()
}

fn batch(vocab: u32, seed: u64) -> whetstone_engine::batch::Batch {
    let mut rng = Rng::new(seed);
    let rows: Vec<(Vec<u32>, Vec<bool>)> = [9usize, 6, 11]
        .iter()
        .map(|&n| {
            let ids: Vec<u32> = (0..n).map(|_| 3 + rng.below(vocab as usize - 3) as u32).collect();
            let mask: Vec<bool> = (0..n).map(|i| i >= 3).collect();
            (ids, mask)
        })
        .collect();
    let refs: Vec<(&[u32], &[bool])> = rows.iter().map(|(a, b)| (a.as_slice(), b.as_slice())).collect();
    collate(&refs, 0, &Device::Cpu).unwrap()
}

fn schedule() -> Schedule {
    Schedule { kind: ScheduleKind::Constant, base_lr: 1e-2, warmup_steps: 0, total_steps: 10 }
}

fn frozen_tensors(m: &Decoder) -> Vec<(String, Tensor)> {
    let mut v = vec![("embed".to_string(), m.embed.clone()), ("norm".to_string(), m.norm.clone())];
    v.push(("lm_head".into(), m.lm_head.dense().expect("dense lm head").clone()));
    for (i, b) in m.blocks.iter().enumerate() {
        v.push((format!("{i}.input_norm"), b.input_norm.clone()));
        v.push((format!("{i}.post_norm"), b.post_norm.clone()));
        for (n, t) in [("attn_out_norm", &b.attn_out_norm), ("mlp_out_norm", &b.mlp_out_norm)] {
            if let Some(t) = t {
                v.push((format!("{i}.{n}"), t.clone()));
            }
        }
        for t in Target::ALL {
            if let Some(w) = b.linear(t).dense() {
                v.push((format!("{i}.{t:?}.weight"), w.clone()));
            }
            if let Some(bias) = &b.linear(t).bias {
                v.push((format!("{i}.{t:?}.bias"), bias.clone()));
            }
        }
    }
    v
}

#[test]
fn every_adapter_tensor_gets_a_gradient_and_no_frozen_tensor_does() {
    for arch in ALL_ARCHS {
        let model = tiny(arch, DType::F32);
        let mut rng = Rng::new(1);
        let lora = LoraConfig { r: 4, alpha: 8.0, dropout: 0.0, targets: Target::ALL.to_vec(), use_rslora: false };
        let adapter = Adapter::init(&model.config, lora, &mut rng, &Device::Cpu).unwrap();
        let opts = StepOptions { max_grad_norm: Some(1.0), grad_checkpoint: false };
        let mut trainer = Trainer::new(&model, adapter, AdamWConfig::default(), schedule(), opts, rng).unwrap();
        let b = batch(model.config.vocab_size as u32, 3);
        // B starts at zero, so A's gradient is zero until the first step has moved B.
        trainer.step(std::slice::from_ref(&b)).unwrap();

        let ctx = LoraCtx { adapter: &trainer.adapter, train: true, dropout: None };
        let (loss, n) = model.loss_sum(&b.input_ids, Some(&b.attention_mask), &b.loss_mask, Some(&ctx)).unwrap();
        assert!(n > 0);
        let grads = loss.backward().unwrap();
        for (name, var) in trainer.adapter.named_vars() {
            let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{arch:?}: no gradient for {name}"));
            let v: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
            assert!(v.iter().all(|x| x.is_finite()), "{arch:?}: non-finite gradient for {name}");
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(norm > 0.0, "{arch:?}: zero gradient for {name}");
        }
        for (name, t) in frozen_tensors(&model) {
            assert!(grads.get(&t).is_none(), "{arch:?}: frozen tensor {name} received a gradient");
        }
    }
}

/// Loss as a function of one adapter value, in f64, for finite differences.
fn loss_at(model: &Decoder, adapter: &Adapter, b: &whetstone_engine::batch::Batch) -> f64 {
    let ctx = LoraCtx { adapter, train: false, dropout: None };
    let (l, n) = model.loss_sum(&b.input_ids, Some(&b.attention_mask), &b.loss_mask, Some(&ctx)).unwrap();
    l.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap() / n as f64
}

#[test]
fn adapter_gradients_match_finite_differences() {
    for arch in ALL_ARCHS {
        let model = tiny(arch, DType::F64);
        let mut rng = Rng::new(5);
        let lora = LoraConfig { r: 2, alpha: 4.0, dropout: 0.0, targets: Target::ALL.to_vec(), use_rslora: false };
        let adapter = Adapter::init(&model.config, lora, &mut rng, &Device::Cpu).unwrap();
        // Non-zero B so that every path carries signal.
        for (_, v) in adapter.named_vars() {
            let n = v.elem_count();
            let vals: Vec<f32> = (0..n).map(|_| rng.uniform(-0.2, 0.2) as f32).collect();
            v.set(&Tensor::from_vec(vals, v.shape(), &Device::Cpu).unwrap()).unwrap();
        }
        let b = batch(model.config.vocab_size as u32, 11);
        let ctx = LoraCtx { adapter: &adapter, train: true, dropout: None };
        let (loss, n) = model.loss_sum(&b.input_ids, Some(&b.attention_mask), &b.loss_mask, Some(&ctx)).unwrap();
        let grads = (loss / n as f64).unwrap().backward().unwrap();
        let mut checked = 0;
        for (name, var) in adapter.named_vars().into_iter().step_by(3) {
            let g: Vec<f32> = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let orig: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            for idx in [0usize, orig.len() / 2, orig.len() - 1] {
                let eps = 1e-3f32;
                let mut plus = orig.clone();
                plus[idx] += eps;
                var.set(&Tensor::from_vec(plus, var.shape(), &Device::Cpu).unwrap()).unwrap();
                let lp = loss_at(&model, &adapter, &b);
                let mut minus = orig.clone();
                minus[idx] -= eps;
                var.set(&Tensor::from_vec(minus, var.shape(), &Device::Cpu).unwrap()).unwrap();
                let lm = loss_at(&model, &adapter, &b);
                var.set(&Tensor::from_vec(orig.clone(), var.shape(), &Device::Cpu).unwrap()).unwrap();
                let fd = (lp - lm) / (2.0 * eps as f64);
                let an = g[idx] as f64;
                let tol = 1e-4 + 1e-3 * fd.abs().max(an.abs());
                assert!((fd - an).abs() < tol, "{arch:?} {name}[{idx}]: analytic {an} vs numeric {fd}");
                checked += 1;
            }
        }
        assert!(checked > 10);
    }
}

#[test]
fn checkpointed_gradients_equal_plain_ones_with_dropout() {
    // Gemma 2 too: its per-layer window masks, final norm and capped loss go through the checkpointed path.
    for arch in [Architecture::Llama, Architecture::Gemma2] {
    let model = tiny(arch, DType::F32);
    let b = batch(model.config.vocab_size as u32, 4);
    let grads = |checkpoint: bool| {
        let mut rng = Rng::new(9);
        let lora = LoraConfig { r: 4, alpha: 8.0, dropout: 0.1, targets: Target::ALL.to_vec(), use_rslora: false };
        let adapter = Adapter::init(&model.config, lora, &mut rng, &Device::Cpu).unwrap();
        for (_, v) in adapter.named_vars() {
            let vals: Vec<f32> = (0..v.elem_count()).map(|_| rng.uniform(-0.1, 0.1) as f32).collect();
            v.set(&Tensor::from_vec(vals, v.shape(), &Device::Cpu).unwrap()).unwrap();
        }
        let opts = StepOptions { max_grad_norm: None, grad_checkpoint: checkpoint };
        let t = Trainer::new(&model, adapter, AdamWConfig::default(), schedule(), opts, Rng::new(77)).unwrap();
        let (g, loss) = t.gradients(&b, b.targets as f64).unwrap();
        let after = t.rng.borrow().clone();
        (g.iter().map(|x| x.flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect::<Vec<_>>(), loss, after)
    };
    let (plain, l1, r1) = grads(false);
    let (ckpt, l2, r2) = grads(true);
    assert!((l1 - l2).abs() < 1e-5 * l1.abs().max(1.0), "{l1} vs {l2}");
    assert_eq!(r1, r2, "dropout draws must be consumed identically");
    for (a, b) in plain.iter().zip(ckpt.iter()) {
        for (x, y) in a.iter().zip(b.iter()) {
            assert!((x - y).abs() <= 1e-5 + 1e-4 * x.abs().max(y.abs()), "{x} vs {y}");
        }
    }
    }
}

#[test]
fn accumulated_micro_batches_equal_one_large_batch() {
    let model = tiny(Architecture::Qwen2, DType::F32);
    let mut rng = Rng::new(2);
    let rows: Vec<(Vec<u32>, Vec<bool>)> = (0..4)
        .map(|k| {
            let n = 5 + 2 * k;
            ((0..n).map(|_| 3 + rng.below(90) as u32).collect(), (0..n).map(|i| i >= 2).collect())
        })
        .collect();
    let refs: Vec<(&[u32], &[bool])> = rows.iter().map(|(a, b)| (a.as_slice(), b.as_slice())).collect();
    let run = |micro: Vec<whetstone_engine::batch::Batch>| {
        let mut r = Rng::new(3);
        let lora = LoraConfig { r: 4, alpha: 8.0, dropout: 0.0, targets: vec![Target::Q, Target::V, Target::Down], use_rslora: true };
        let adapter = Adapter::init(&model.config, lora, &mut r, &Device::Cpu).unwrap();
        let opts = StepOptions { max_grad_norm: Some(1.0), grad_checkpoint: false };
        let mut t = Trainer::new(&model, adapter, AdamWConfig::default(), schedule(), opts, r).unwrap();
        let s1 = t.step(&micro).unwrap();
        let s2 = t.step(&micro).unwrap();
        (s1.loss, s2.loss, s2.grad_norm)
    };
    let one = run(vec![collate(&refs, 0, &Device::Cpu).unwrap()]);
    let two = run(vec![collate(&refs[..2], 0, &Device::Cpu).unwrap(), collate(&refs[2..], 0, &Device::Cpu).unwrap()]);
    for (a, b) in [(one.0, two.0), (one.1, two.1), (one.2, two.2)] {
        assert!((a - b).abs() < 1e-5 * a.abs().max(1e-3), "{one:?} vs {two:?}");
    }
}

#[test]
fn cached_generation_logits_equal_full_forward() {
    for arch in ALL_ARCHS {
        let model = tiny(arch, DType::F32);
        let ids: Vec<u32> = vec![5, 17, 33, 2, 61, 7, 8, 40];
        let full = model
            .forward(&Tensor::from_vec(ids.clone(), (1, ids.len()), &Device::Cpu).unwrap(), None, None)
            .unwrap();
        let mut cache = whetstone_engine::KvCache::default();
        let first = model.forward_cached(&Tensor::from_vec(ids[..5].to_vec(), (1, 5), &Device::Cpu).unwrap(), &mut cache, None).unwrap();
        let want: Vec<f32> = full.get(0).unwrap().get(4).unwrap().to_vec1().unwrap();
        let got: Vec<f32> = first.get(0).unwrap().to_vec1().unwrap();
        assert_close(&want, &got, 1e-5);
        for (k, &id) in ids.iter().enumerate().skip(5) {
            let out = model.forward_cached(&Tensor::from_vec(vec![id], (1, 1), &Device::Cpu).unwrap(), &mut cache, None).unwrap();
            let want: Vec<f32> = full.get(0).unwrap().get(k).unwrap().to_vec1().unwrap();
            assert_close(&want, &out.get(0).unwrap().to_vec1::<f32>().unwrap(), 1e-5);
        }
    }
}

fn assert_close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * (1.0 + x.abs()), "{x} vs {y}");
    }
}

#[test]
fn same_seed_gives_a_bit_identical_loss_curve() {
    let model = tiny(Architecture::Llama, DType::F32);
    let curve = || {
        let mut rng = Rng::new(21);
        let lora = LoraConfig { r: 4, alpha: 8.0, dropout: 0.1, targets: Target::ALL.to_vec(), use_rslora: false };
        let adapter = Adapter::init(&model.config, lora, &mut rng, &Device::Cpu).unwrap();
        let opts = StepOptions { max_grad_norm: Some(1.0), grad_checkpoint: false };
        let mut t = Trainer::new(&model, adapter, AdamWConfig::default(), schedule(), opts, rng).unwrap();
        (0..6).map(|s| t.step(&[batch(96, s)]).unwrap().loss.to_bits()).collect::<Vec<u64>>()
    };
    let a = curve();
    assert_eq!(a, curve());
    let _ = RefCell::new(0);
}
