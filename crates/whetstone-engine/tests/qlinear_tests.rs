//! The frozen quantized linear (NF4 and GGUF block types) against a dense f32 linear built from the
//! dequantized weight. Forward and backward dequantize and multiply, so the reference is the same
//! arithmetic and every comparison is exact; the quantized weight itself never gets a gradient.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor, Var};
use std::cell::RefCell;
use whetstone_engine::batch::collate;
use whetstone_engine::lora::{Adapter, LoraConfig, Target};
use whetstone_engine::model::{Decoder, LoraCtx};
use whetstone_engine::nf4::Nf4;
use whetstone_engine::ops::{self, FrozenLinear};
use whetstone_engine::quant::{FrozenWeight, QuantWeight};
use whetstone_engine::rng::Rng;
use whetstone_engine::weights::{unpermute_qk, unpermute_qk_quantized, BaseWeights};
use whetstone_engine::{Architecture, ModelConfig};

const GGUF_TYPES: [GgmlDType; 6] = [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q4K, GgmlDType::Q5K, GgmlDType::Q6K, GgmlDType::Q8_0];

fn rand(shape: &[usize], seed: u64, scale: f64) -> Tensor {
    let mut r = Rng::new(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| (r.uniform(-1.0, 1.0) * scale) as f32).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
}

fn assert_same(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    assert!(bits(a) == bits(b), "{what}: values differ");
}

/// Every quantized form of a random `[out, in]` weight, with its dequantized f32 weight.
fn quantized_weights(out: usize, inp: usize, seed: u64) -> Vec<(String, QuantWeight, Tensor)> {
    let w = rand(&[out, inp], seed, 0.1);
    let mut v = Vec::new();
    for dt in GGUF_TYPES {
        let q = QTensor::quantize(&w, dt).unwrap();
        let dense = q.dequantize(&Device::Cpu).unwrap();
        v.push((format!("{dt:?}"), QuantWeight::Gguf(q), dense));
    }
    let nf4 = Nf4::quantize_tensor(&w, true).unwrap();
    let dense = nf4.dequantize_cpu().unwrap();
    v.push(("nf4".into(), QuantWeight::Nf4(nf4.to_device(&Device::Cpu).unwrap()), dense));
    v
}

#[test]
fn quantized_linear_matches_dense_reference() {
    let (out, inp) = (48, 512);
    let bias = rand(&[out], 3, 0.1);
    let x = rand(&[2, 3, inp], 4, 1.0);
    let r = rand(&[2, 3, out], 5, 1.0);
    for (name, q, dense) in quantized_weights(out, inp, 2) {
        assert_eq!(q.dims(), vec![out, inp]);
        assert!(q.storage_bytes() < out * inp * 4 / 3, "{name}: {} bytes is not quantized", q.storage_bytes());
        let ql = FrozenLinear::quantized(q, Some(bias.clone()));
        let dl = FrozenLinear::new(dense.clone(), Some(bias.clone()));
        assert_same(&ql.weight.materialize(DType::F32).unwrap(), &dense, &format!("{name}: dequantized weight"));
        let run = |lin: &FrozenLinear| {
            let xv = Var::from_tensor(&x).unwrap();
            let y = lin.forward(xv.as_tensor()).unwrap();
            let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            (y.detach(), g.get(xv.as_tensor()).expect("input gradient").clone(), g)
        };
        let (yq, gq, store) = run(&ql);
        let (yd, gd, _) = run(&dl);
        assert_same(&yq, &yd, &format!("{name}: forward"));
        assert_same(&gq, &gd, &format!("{name}: input gradient"));
        assert!(store.get(&bias).is_none(), "{name}: the frozen bias got a gradient");
    }
}

#[test]
fn quantized_lora_linear_matches_dense_reference() {
    let (out, inp, rank) = (32, 256, 4);
    let x = rand(&[2, 5, inp], 7, 1.0);
    let r = rand(&[2, 5, out], 8, 1.0);
    let drop = whetstone_engine::fused::Dropout { seed: 9, p: 0.1 };
    for (name, q, dense) in quantized_weights(out, inp, 6) {
        let ql = FrozenLinear::quantized(q, None);
        let dl = FrozenLinear::new(dense, None);
        let run = |lin: &FrozenLinear| {
            let xv = Var::from_tensor(&x).unwrap();
            let a = Var::from_tensor(&rand(&[rank, inp], 10, 0.1)).unwrap();
            let b = Var::from_tensor(&rand(&[out, rank], 11, 0.1)).unwrap();
            let y = ops::lora_linear(xv.as_tensor(), lin, a.as_tensor(), b.as_tensor(), 2.0, Some(drop)).unwrap();
            let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let grads: Vec<Tensor> = [&xv, &a, &b].iter().map(|v| g.get(v.as_tensor()).expect("gradient").clone()).collect();
            (y.detach(), grads)
        };
        let (yq, gq) = run(&ql);
        let (yd, gd) = run(&dl);
        assert_same(&yq, &yd, &format!("{name}: lora forward"));
        for (i, what) in ["x", "lora_A", "lora_B"].iter().enumerate() {
            assert_same(&gq[i], &gd[i], &format!("{name}: gradient of {what}"));
            let v: Vec<f32> = gq[i].flatten_all().unwrap().to_vec1().unwrap();
            assert!(v.iter().all(|x| x.is_finite()) && v.iter().any(|&x| x != 0.0), "{name}: gradient of {what}");
        }
    }
}

#[test]
fn quantized_rows_unpermute_exactly() {
    // llama.cpp's q/k row order undone on the raw blocks equals undoing it on the dense weight.
    for dt in GGUF_TYPES {
        let w = rand(&[64, 256], 12, 0.1);
        let q = QTensor::quantize(&w, dt).unwrap();
        let ours = unpermute_qk_quantized(&q, 4, &Device::Cpu).unwrap().dequantize(&Device::Cpu).unwrap();
        let want = unpermute_qk(&q.dequantize(&Device::Cpu).unwrap(), 4).unwrap();
        assert_same(&ours, &want, &format!("{dt:?}: un-permuted rows"));
    }
}

fn tiny_batch(vocab: usize) -> whetstone_engine::batch::Batch {
    let mut rng = Rng::new(3);
    let rows: Vec<(Vec<u32>, Vec<bool>)> = [9usize, 6, 11]
        .iter()
        .map(|&n| ((0..n).map(|_| 3 + rng.below(vocab - 3) as u32).collect(), (0..n).map(|i| i >= 3).collect()))
        .collect();
    let refs: Vec<(&[u32], &[bool])> = rows.iter().map(|(a, b)| (a.as_slice(), b.as_slice())).collect();
    collate(&refs, 0, &Device::Cpu).unwrap()
}

/// A decoder whose block linears are quantized by `f`, and the dense decoder of its dequantized weights.
fn tiny_pair(arch: Architecture, f: impl Fn(&Tensor) -> QuantWeight) -> (Decoder, Decoder) {
    let cfg = ModelConfig::tiny(arch);
    let mut qw = BaseWeights::random(&cfg, 7, &Device::Cpu).unwrap();
    qw.quantize_linears(|_, t| Ok(f(t))).unwrap();
    let mut dw = BaseWeights::random(&cfg, 7, &Device::Cpu).unwrap();
    for (name, q) in &qw.quantized {
        dw.tensors.insert(name.clone(), q.dequantize(DType::F32).unwrap());
    }
    (Decoder::from_weights(qw).unwrap(), Decoder::from_weights(dw).unwrap())
}

#[test]
fn adapters_on_a_quantized_base_train_like_on_its_dequantized_weights() {
    type Quantizer = Box<dyn Fn(&Tensor) -> QuantWeight>;
    let quantizers: Vec<(&str, Quantizer)> = vec![
        ("nf4", Box::new(|t: &Tensor| QuantWeight::Nf4(Nf4::quantize_tensor(t, true).unwrap().to_device(&Device::Cpu).unwrap()))),
        ("q8_0", Box::new(|t: &Tensor| QuantWeight::Gguf(QTensor::quantize(t, GgmlDType::Q8_0).unwrap()))),
        ("q4_1", Box::new(|t: &Tensor| QuantWeight::Gguf(QTensor::quantize(t, GgmlDType::Q4_1).unwrap()))),
    ];
    for arch in [Architecture::Llama, Architecture::Qwen2] {
        for (name, f) in &quantizers {
            let (qm, dm) = tiny_pair(arch, f);
            for b in &qm.blocks {
                for t in Target::ALL {
                    assert!(matches!(b.linear(t).weight, FrozenWeight::Quantized(_)), "{name}: {t:?} is not quantized");
                }
            }
            let mem = qm.base_memory();
            assert!(mem.linear_params > 0 && mem.linear_bytes_per_param() < 1.2, "{name}: {mem:?}");
            let mut rng = Rng::new(1);
            let lora = LoraConfig { r: 4, alpha: 8.0, dropout: 0.1, targets: Target::ALL.to_vec(), use_rslora: false };
            let adapter = Adapter::init(&qm.config, lora, &mut rng, &Device::Cpu).unwrap();
            // Non-zero B so that A gets a gradient too.
            for (_, v) in adapter.named_vars() {
                v.set(&rand(v.dims(), 21, 0.1)).unwrap();
            }
            let batch = tiny_batch(qm.config.vocab_size);
            let grads_of = |m: &Decoder| {
                let rng = RefCell::new(Rng::new(9));
                let ctx = LoraCtx { adapter: &adapter, train: true, dropout: Some(&rng) };
                let (loss, _) = m.loss_sum(&batch.input_ids, Some(&batch.attention_mask), &batch.loss_mask, Some(&ctx)).unwrap();
                let g = loss.backward().unwrap();
                (loss.to_scalar::<f32>().unwrap(), g)
            };
            let (lq, gq) = grads_of(&qm);
            let (ld, gd) = grads_of(&dm);
            assert_eq!(lq.to_bits(), ld.to_bits(), "{arch:?} {name}: loss");
            for (key, var) in adapter.named_vars() {
                let a = gq.get(var.as_tensor()).unwrap_or_else(|| panic!("{arch:?} {name}: no gradient for {key}"));
                let v: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
                assert!(v.iter().all(|x| x.is_finite()) && v.iter().any(|&x| x != 0.0), "{arch:?} {name}: gradient of {key}");
                assert_same(a, gd.get(var.as_tensor()).unwrap(), &format!("{arch:?} {name}: gradient of {key}"));
            }
            // Only adapter tensors and the frozen dense tensors' absence: no gradient for the embedding,
            // norms or LM head either.
            for t in [&qm.embed, &qm.norm] {
                assert!(gq.get(t).is_none(), "{arch:?} {name}: a frozen tensor got a gradient");
            }
        }
    }
}

#[test]
fn nf4_on_load_from_safetensors() {
    use whetstone_engine::quant::QuantMode;
    use whetstone_engine::weights::{is_block_linear, ModelFiles};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity/llama");
    let files = ModelFiles::detect(&dir).unwrap();
    let dense = BaseWeights::load(&files, DType::F32, &Device::Cpu).unwrap();
    let q = BaseWeights::load_quant(&files, DType::F32, &Device::Cpu, QuantMode::Nf4).unwrap();
    let linears: Vec<&String> = dense.tensors.keys().filter(|n| is_block_linear(n)).collect();
    assert_eq!(linears.len(), 7 * dense.config.num_layers);
    assert_eq!(q.quantized.len(), linears.len());
    for name in linears {
        assert!(!q.tensors.contains_key(name), "{name} is also held dense");
        let want = Nf4::quantize_tensor(&dense.tensors[name], true).unwrap().dequantize_cpu().unwrap();
        assert_same(&q.quantized[name].dequantize(DType::F32).unwrap(), &want, name);
    }
    // Embeddings, norms and the LM head stay dense and unchanged.
    for (name, t) in &q.tensors {
        assert_same(t, &dense.tensors[name], name);
    }
    let model = Decoder::from_weights(q).unwrap();
    assert_eq!(model.base_memory().kinds.iter().cloned().collect::<Vec<_>>(), vec!["nf4".to_string()]);
}

#[test]
fn quant_setting_reads_from_toml_and_flags() {
    use whetstone_engine::quant::QuantMode;
    use whetstone_engine::run::TrainSettings;
    let p = std::path::Path::new("run.toml");
    assert_eq!(TrainSettings::default().quant, QuantMode::Native);
    assert_eq!(TrainSettings::from_toml("quant = \"nf4\"", p).unwrap().quant, QuantMode::Nf4);
    assert_eq!(TrainSettings::from_toml("quant = \"none\"", p).unwrap().quant, QuantMode::None);
    assert!(TrainSettings::from_toml("quant = \"int3\"", p).is_err());
    assert_eq!("NF4".parse::<QuantMode>().unwrap(), QuantMode::Nf4);
    let e = "int3".parse::<QuantMode>().unwrap_err().to_string();
    assert!(e.contains("int3") && e.contains("nf4"), "{e}");
}

#[test]
fn token_by_token_products_use_the_quantized_kernel_within_its_rounding() {
    // Outside a graph, a GGUF weight multiplies up to 8 rows with candle's quantized kernel, which
    // rounds the input to 8 bits per block of 32 (Q8_0/Q8_K): close to, not equal to, the dense product.
    let (out, inp) = (48, 512);
    let x = rand(&[1, 2, inp], 31, 1.0);
    for (name, q, dense) in quantized_weights(out, inp, 30) {
        let ql = FrozenLinear::quantized(q, None);
        let y = ql.forward(&x).unwrap();
        let want = whetstone_engine::blas::matmul(&x.reshape((2, inp)).unwrap(), &dense.t().unwrap()).unwrap().reshape((1, 2, out)).unwrap();
        let scale: f32 = want.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
        let err: f32 = (&y - &want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
        assert!(err / scale < 2e-2, "{name}: relative error {}", err / scale);
        if name == "nf4" {
            assert_same(&y, &want, "nf4 has no quantized kernel: dequantize and multiply");
        } else {
            assert!(err > 0.0, "{name}: expected the quantized kernel's rounding");
        }
        // Past 8 rows the product is the engine's dense product of the dequantized weight again.
        let x9 = rand(&[9, inp], 32, 1.0);
        let dense_product = whetstone_engine::blas::matmul(&x9, &dense.t().unwrap()).unwrap();
        assert_same(&ql.forward(&x9).unwrap(), &dense_product, &format!("{name}: 9 rows"));
    }
}
