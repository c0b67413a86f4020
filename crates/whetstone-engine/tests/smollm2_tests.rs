//! The real bundled model, SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to f32), against
//! transformers + PEFT loading the same file (`scripts/parity/smollm2_reference.py`).

mod common;

use candle_core::{DType, Device, Tensor, D};
use whetstone_engine::lora::Adapter;
use whetstone_engine::model::{Decoder, LoraCtx};
use whetstone_engine::weights::{BaseWeights, ModelFiles};

fn fixture() -> std::collections::HashMap<String, Tensor> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2/reference.safetensors");
    candle_core::safetensors::load(p, &Device::Cpu).unwrap()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

fn max_rel(ours: &Tensor, reference: &Tensor) -> f32 {
    let scale: f32 = reference.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
    max_abs(ours, reference) / scale.max(1e-30)
}

#[test]
fn smollm2_gguf_matches_transformers() {
    let path = common::bundled_model();
    let io = fixture();
    let files = ModelFiles::detect(&path).unwrap();
    let weights = BaseWeights::load(&files, DType::F32, &Device::Cpu).unwrap();
    // Dequantization and q/k row order, before anything is computed with them.
    for (name, t) in &weights.tensors {
        if let Some(reference) = io.get(&format!("weight_rows.{name}")) {
            let rows = reference.dim(0).unwrap();
            let ours = if t.rank() == 1 { t.clone() } else { t.narrow(0, 0, rows).unwrap() };
            let d = max_abs(&ours, reference);
            assert!(d == 0.0, "dequantized {name} differs by {d}");
        }
    }
    let model = Decoder::from_weights(weights).unwrap();
    let ids = io["input_ids"].to_dtype(DType::U32).unwrap();
    let t = ids.dim(1).unwrap();
    let logits = model.forward(&ids, None, None).unwrap();
    let last4 = logits.squeeze(0).unwrap().narrow(0, t - 4, 4).unwrap();
    let d = max_abs(&last4, &io["logits_rows"]);
    eprintln!("smollm2: max |logit difference| over the last 4 positions = {d:e}");
    assert!(d < 1e-3, "logits differ by {d}");
    let argmax: Vec<u32> = logits.squeeze(0).unwrap().argmax(D::Minus1).unwrap().to_vec1().unwrap();
    let want: Vec<i64> = io["logits_argmax"].to_vec1().unwrap();
    assert_eq!(argmax.iter().map(|&x| x as i64).collect::<Vec<_>>(), want);

    let labels: Vec<i64> = io["labels"].flatten_all().unwrap().to_vec1().unwrap();
    let mask = Tensor::from_vec(labels.iter().map(|&l| u32::from(l != -100)).collect::<Vec<_>>(), (1, t), &Device::Cpu).unwrap();
    let (sum, n) = model.loss_sum(&ids, None, &mask, None).unwrap();
    let loss: f32 = (sum / n as f64).unwrap().to_scalar().unwrap();
    let want: f32 = io["loss"].flatten_all().unwrap().get(0).unwrap().to_scalar().unwrap();
    eprintln!("smollm2: base loss {loss} vs transformers {want}");
    assert!(((loss - want) / want).abs() < 1e-4);

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2/adapter_init");
    let adapter = Adapter::load_peft(&dir, &model.config, &Device::Cpu).unwrap();
    let ctx = LoraCtx { adapter: &adapter, train: true, dropout: None };
    let (sum, n) = model.loss_sum(&ids, None, &mask, Some(&ctx)).unwrap();
    let loss = (sum / n as f64).unwrap();
    let l: f32 = loss.to_scalar().unwrap();
    let want: f32 = io["loss_lora"].flatten_all().unwrap().get(0).unwrap().to_scalar().unwrap();
    eprintln!("smollm2: LoRA loss {l} vs PEFT {want}");
    assert!(((l - want) / want).abs() < 1e-4);
    let grads = loss.backward().unwrap();
    let mut worst = 0f32;
    let mut compared = 0;
    for (key, var) in adapter.named_vars() {
        if let Some(reference) = io.get(&format!("grad.{key}")) {
            let r = max_rel(grads.get(var.as_tensor()).unwrap(), reference);
            assert!(r < 1e-3, "gradient of {key} differs by {r} (relative)");
            worst = worst.max(r);
            compared += 1;
        }
    }
    eprintln!("smollm2: worst relative gradient difference over {compared} adapter tensors = {worst:e}");
    assert_eq!(compared, 28);
}

#[test]
fn smollm2_trains_on_its_own_quantization() {
    use whetstone_engine::quant::QuantMode;
    let path = common::bundled_model();
    let io = fixture();
    let files = ModelFiles::detect(&path).unwrap();
    let native = Decoder::load_quant(&files, DType::F32, &Device::Cpu, QuantMode::Native).unwrap();
    let mem = native.base_memory();
    eprintln!(
        "smollm2 native: {} quantized linear params in {} bytes ({:.4} B/param, {:?}); {:.4} B/param overall",
        mem.linear_params,
        mem.linear_bytes,
        mem.linear_bytes_per_param(),
        mem.kinds,
        mem.bytes_per_param()
    );
    assert!(!mem.kinds.is_empty() && mem.linear_bytes_per_param() < 1.0);
    let ids = io["input_ids"].to_dtype(DType::U32).unwrap();
    let t = ids.dim(1).unwrap();
    // q and k rows were reordered block by block; the logits must be those of the dense load.
    let logits = native.forward(&ids, None, None).unwrap();
    let last4 = logits.squeeze(0).unwrap().narrow(0, t - 4, 4).unwrap();
    let d = max_abs(&last4, &io["logits_rows"]);
    eprintln!("smollm2 native: max |logit difference| over the last 4 positions = {d:e}");
    assert!(d < 1e-3, "logits differ by {d}");
    drop(native);
    let dense = Decoder::load_quant(&files, DType::F32, &Device::Cpu, QuantMode::None).unwrap();
    let want = dense.forward(&ids, None, None).unwrap();
    assert_eq!(max_abs(&logits, &want), 0.0, "quantized and dequantized bases disagree");
    assert!(dense.base_memory().kinds.is_empty());
}
