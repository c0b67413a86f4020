//! The GPU's precision scheme, checked where CI runs: the decoder computes in bf16 while the LoRA
//! weights, their gradients and AdamW's moments stay f32. candle runs these bf16 ops on the CPU too
//! (slowly), so the dtype plumbing is the same code the GPU runs; only the kernels differ.

mod common;

use candle_core::{DType, Device, Tensor};
use std::path::PathBuf;
use whetstone_engine::batch::Batch;
use whetstone_engine::config::{Architecture, ModelConfig};
use whetstone_engine::lora::Adapter;
use whetstone_engine::model::Decoder;
use whetstone_engine::nf4::Nf4;
use whetstone_engine::optim::AdamWConfig;
use whetstone_engine::quant::{QuantMode, QuantWeight};
use whetstone_engine::rng::Rng;
use whetstone_engine::schedule::{Schedule, ScheduleKind};
use whetstone_engine::train::{StepOptions, Trainer};
use whetstone_engine::weights::BaseWeights;
use whetstone_engine::ModelFiles;

fn fixture() -> (ModelFiles, Batch, PathBuf) {
    let d = common::parity_dir("llama");
    let f = common::parity_io("llama");
    let tokens = f.input_ids.elem_count();
    let batch = Batch { input_ids: f.input_ids, attention_mask: f.attention_mask, loss_mask: f.loss_mask, tokens, targets: f.targets };
    (ModelFiles::HfDir(d.clone()), batch, d.join("adapter_init"))
}

fn rel(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_dtype(DType::F64).unwrap();
    let b = b.to_dtype(DType::F64).unwrap();
    let d: f64 = (&a - &b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
    let s: f64 = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
    d / s.max(1e-30)
}

/// One optimizer step in `dtype`: its loss, its gradients, and the adapter and AdamW state after it.
fn step(dtype: DType, quant: QuantMode, grad_checkpoint: bool) -> (f64, Vec<Tensor>, Vec<Tensor>, Vec<Tensor>) {
    let (files, batch, adapter_dir) = fixture();
    let model = Decoder::load_quant(&files, dtype, &Device::Cpu, quant).unwrap();
    assert_eq!(model.dtype, dtype);
    assert_eq!(model.embed.dtype(), dtype);
    let adapter = Adapter::load_peft(&adapter_dir, &model.config, &Device::Cpu).unwrap();
    let schedule = Schedule { kind: ScheduleKind::Constant, base_lr: 2e-3, warmup_steps: 0, total_steps: 1 };
    let opts = StepOptions { max_grad_norm: None, grad_checkpoint };
    let mut t = Trainer::new(&model, adapter, AdamWConfig::default(), schedule, opts, Rng::new(0)).unwrap();
    let g = t.accumulate(std::slice::from_ref(&batch)).unwrap();
    let grads = g.grads.clone();
    let mut applied = g.grads;
    t.apply(&mut applied, 0.0, 2e-3).unwrap();
    let weights: Vec<Tensor> = t.adapter.vars().iter().map(|v| v.as_tensor().clone()).collect();
    let (m, v) = t.optimizer.moments();
    let state: Vec<Tensor> = m.iter().chain(v.iter()).cloned().collect();
    (g.loss, grads, weights, state)
}

#[test]
fn bf16_compute_keeps_the_adapter_its_gradients_and_adamw_in_f32() {
    for grad_checkpoint in [false, true] {
        let (loss32, grads32, weights32, _) = step(DType::F32, QuantMode::None, grad_checkpoint);
        let (loss16, grads16, weights16, state16) = step(DType::BF16, QuantMode::None, grad_checkpoint);
        for t in grads16.iter().chain(&weights16).chain(&state16) {
            assert_eq!(t.dtype(), DType::F32, "adapter tensors, gradients and AdamW moments are f32 (checkpointing {grad_checkpoint})");
        }
        // bf16 keeps 8 bits of mantissa: the loss agrees to about 1%, the step's gradients to a few.
        let loss_rel = ((loss16 - loss32) / loss32).abs();
        assert!(loss_rel < 1e-2, "loss {loss16} in bf16 vs {loss32} in f32");
        let worst = grads16.iter().zip(&grads32).map(|(a, b)| rel(a, b)).fold(0f64, f64::max);
        assert!(worst < 0.1, "gradients differ by up to {worst} (relative)");
        assert!(worst > 0.0, "bf16 must change the numbers a little, or the step did not run in bf16");
        let moved = weights16.iter().zip(&weights32).map(|(a, b)| rel(a, b)).fold(0f64, f64::max);
        assert!(moved < 0.1, "the adapters after one step differ by {moved}");
        eprintln!("checkpointing {grad_checkpoint}: loss rel {loss_rel:.2e}, gradients rel {worst:.2e}, adapter rel {moved:.2e}");
    }
}

#[test]
fn qlora_in_bf16_dequantizes_to_bf16_and_trains_f32_adapters() {
    let (loss32, grads32, _, _) = step(DType::F32, QuantMode::Nf4, true);
    let (loss16, grads16, weights16, state16) = step(DType::BF16, QuantMode::Nf4, true);
    assert!(grads16.iter().chain(&weights16).chain(&state16).all(|t| t.dtype() == DType::F32));
    assert!(((loss16 - loss32) / loss32).abs() < 1e-2, "{loss16} vs {loss32}");
    let worst = grads16.iter().zip(&grads32).map(|(a, b)| rel(a, b)).fold(0f64, f64::max);
    assert!(worst < 0.1, "{worst}");
}

#[test]
fn nf4_dequantizes_to_bf16_as_the_rounded_f32_values() {
    let mut rng = Rng::new(3);
    let values: Vec<f32> = (0..40 * 70).map(|_| rng.uniform(-2.0, 2.0) as f32).collect();
    let q = Nf4::quantize(&values, &[40, 70], true);
    let on = q.to_device(&Device::Cpu).unwrap();
    let f32s = on.dequantize(DType::F32).unwrap();
    let want: Vec<u16> = f32s.to_dtype(DType::BF16).unwrap().flatten_all().unwrap().to_vec1::<half::bf16>().unwrap().iter().map(|v| v.to_bits()).collect();
    for (what, t) in [("host loop", on.dequantize(DType::BF16).unwrap()), ("tensor ops", on.dequantize_ops(DType::BF16).unwrap())] {
        assert_eq!(t.dtype(), DType::BF16);
        assert_eq!(t.dims(), &[40, 70]);
        let got: Vec<u16> = t.flatten_all().unwrap().to_vec1::<half::bf16>().unwrap().iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want, "{what}");
    }
    let ops: Vec<u32> = on.dequantize_ops(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect();
    let host: Vec<u32> = q.dequantize_values().iter().map(|v| v.to_bits()).collect();
    assert_eq!(ops, host, "the GPU's fallback path gives the host's values");
}

#[test]
fn nf4_quantizing_in_parallel_gives_the_blockwise_result() {
    // Over a thousand blocks, so that the work is split, with a partial block at the end.
    let mut rng = Rng::new(9);
    let n = 64 * 2500 + 37;
    let values: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let whole = Nf4::quantize(&values, &[n], false);
    // Quantizing block-sized pieces one by one is the definition the parallel loop must match.
    for (i, chunk) in values.chunks(64).enumerate() {
        let one = Nf4::quantize(chunk, &[chunk.len()], false);
        let bytes = chunk.len().div_ceil(2);
        assert_eq!(&whole.packed[i * 32..i * 32 + bytes], &one.packed[..], "block {i}");
        let (whetstone_engine::nf4::Absmax::Plain(a), whetstone_engine::nf4::Absmax::Plain(b)) = (&whole.absmax, &one.absmax) else { unreachable!() };
        assert_eq!(a[i].to_bits(), b[0].to_bits(), "absmax of block {i}");
    }
}

#[test]
fn random_models_on_a_device_are_made_in_its_dtype_with_nf4_linears() {
    let mut c = ModelConfig::tiny(Architecture::Llama);
    c.hidden_size = 64;
    c.intermediate_size = 128;
    let a = BaseWeights::random_on(&c, 5, &Device::Cpu, DType::BF16, QuantMode::Nf4).unwrap();
    let b = BaseWeights::random_on(&c, 5, &Device::Cpu, DType::BF16, QuantMode::Nf4).unwrap();
    assert_eq!(a.quantized.len(), 7 * c.num_layers, "every block linear is NF4");
    assert!(a.quantized.values().all(|q| matches!(q, QuantWeight::Nf4(_))));
    assert!(a.tensors.values().all(|t| t.dtype() == DType::BF16));
    let e = |w: &BaseWeights| w.tensors["model.embed_tokens.weight"].to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(e(&a), e(&b), "the same seed gives the same model");
    let std = {
        let v = e(&a);
        (v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    };
    assert!((std - 0.02).abs() < 0.003, "embedding std {std}");
    let d = Decoder::from_weights(a).unwrap();
    assert_eq!(d.dtype, DType::BF16);
    assert_eq!(d.base_memory().kinds.into_iter().collect::<Vec<_>>(), ["nf4"]);
    let dense = BaseWeights::random_on(&c, 5, &Device::Cpu, DType::F32, QuantMode::None).unwrap();
    assert!(dense.quantized.is_empty());
}
