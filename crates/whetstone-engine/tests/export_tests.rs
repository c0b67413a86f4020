//! Merged weights and GGUF files read back by our own loader, against the logits transformers + PEFT
//! computed for the same base and adapter (`scripts/parity/make_fixtures.py`'s `logits_init`).

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use whetstone_engine::gguf_write::{self, GgufQuant};
use whetstone_engine::merge::{self, MergedModel};
use whetstone_engine::quant::QuantMode;
use whetstone_engine::{Adapter, Decoder, LoraCtx, ModelFiles};

const MODELS: [&str; 6] = ["llama", "qwen2", "llama3_rope", "mistral", "gemma", "gemma2"];

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity").join(name)
}

struct Fixture {
    files: ModelFiles,
    base: Decoder,
    adapter: Adapter,
    io: HashMap<String, Tensor>,
    input_ids: Tensor,
    attention_mask: Tensor,
}

fn fixture(name: &str) -> Fixture {
    let files = ModelFiles::HfDir(dir(name));
    let base = Decoder::load(&files, DType::F32, &Device::Cpu).unwrap();
    let adapter = Adapter::load_peft(&dir(name).join("adapter_init"), &base.config, &Device::Cpu).unwrap();
    let io = candle_core::safetensors::load(dir(name).join("io.safetensors"), &Device::Cpu).unwrap();
    let input_ids = io["input_ids"].to_dtype(DType::U32).unwrap();
    let attention_mask = io["attention_mask"].to_dtype(DType::U32).unwrap();
    Fixture { files, base, adapter, io, input_ids, attention_mask }
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

fn write_hf(merged: &MergedModel, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let cfg = merge::hf_config_json(&merged.config, merged.tensors[0].1.dtype());
    std::fs::write(out.join("config.json"), serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    merge::write_safetensors(&out.join("model.safetensors"), &merged.tensors).unwrap();
}

#[test]
fn merged_folder_gives_the_logits_of_base_plus_peft_adapter() {
    for name in MODELS {
        let f = fixture(name);
        let merged = merge::merge(&f.files, Some(&f.adapter), QuantMode::None, DType::F32).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        write_hf(&merged, tmp.path());
        let reloaded = Decoder::load(&ModelFiles::HfDir(tmp.path().into()), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(reloaded.config, f.base.config, "{name}: config.json round trip");
        let logits = reloaded.forward(&f.input_ids, Some(&f.attention_mask), None).unwrap();
        let d = max_abs(&logits, &f.io["logits_init"]);
        eprintln!("{name}: merged f32 logits vs transformers+PEFT max |diff| {d:e}");
        assert!(d < 1e-4, "{name}: merged logits differ by {d}");
        // The adapter really is in there: the base alone is far from these logits.
        assert!(max_abs(&f.io["logits_base"], &f.io["logits_init"]) > 1e-3);
    }
}

#[test]
fn merged_f16_and_bf16_stay_within_their_rounding() {
    let f = fixture("llama");
    for (dtype, bound) in [(DType::F16, 5e-3f32), (DType::BF16, 5e-2)] {
        let merged = merge::merge(&f.files, Some(&f.adapter), QuantMode::None, dtype).unwrap();
        assert!(merged.tensors.iter().all(|(_, t)| t.dtype() == dtype));
        let tmp = tempfile::tempdir().unwrap();
        write_hf(&merged, tmp.path());
        let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(tmp.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(cfg["torch_dtype"], merge::dtype_name(dtype));
        let reloaded = Decoder::load(&ModelFiles::HfDir(tmp.path().into()), DType::F32, &Device::Cpu).unwrap();
        let logits = reloaded.forward(&f.input_ids, Some(&f.attention_mask), None).unwrap();
        let d = max_abs(&logits, &f.io["logits_init"]);
        eprintln!("llama: merged {dtype:?} logits max |diff| {d:e}");
        assert!(d < bound, "{dtype:?}: {d}");
    }
}

#[test]
fn nf4_merge_matches_the_qlora_model_it_was_trained_on() {
    let f = fixture("llama");
    let qlora = Decoder::load_quant(&f.files, DType::F32, &Device::Cpu, QuantMode::Nf4).unwrap();
    let ctx = LoraCtx { adapter: &f.adapter, train: false, dropout: None };
    let want = qlora.forward(&f.input_ids, Some(&f.attention_mask), Some(&ctx)).unwrap();
    let merged = merge::merge(&f.files, Some(&f.adapter), QuantMode::Nf4, DType::F32).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    write_hf(&merged, tmp.path());
    let reloaded = Decoder::load(&ModelFiles::HfDir(tmp.path().into()), DType::F32, &Device::Cpu).unwrap();
    let got = reloaded.forward(&f.input_ids, Some(&f.attention_mask), None).unwrap();
    let d = max_abs(&got, &want);
    eprintln!("llama: NF4 merge vs QLoRA forward max |diff| {d:e}");
    assert!(d < 1e-4, "{d}");
    // And it is not the dense merge: the NF4 round trip is in the weights.
    let dense = merge::merge(&f.files, Some(&f.adapter), QuantMode::None, DType::F32).unwrap();
    let name = "model.layers.0.mlp.up_proj.weight";
    assert!(max_abs(merged.get(name).unwrap(), dense.get(name).unwrap()) > 1e-4);
}

fn gguf_content(path: &Path) -> gguf_file::Content {
    gguf_file::Content::read(&mut std::fs::File::open(path).unwrap()).unwrap()
}

#[test]
fn gguf_files_read_back_with_their_shapes_types_and_logits() {
    for name in ["llama", "qwen2", "gemma"] {
        let f = fixture(name);
        let merged = merge::merge(&f.files, Some(&f.adapter), QuantMode::None, DType::F32).unwrap();
        for (quant, bound) in [(GgufQuant::F16, 1e-3f32), (GgufQuant::Q8_0, 2e-2), (GgufQuant::Q4KM, 0.1)] {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("model.gguf");
            let mut calls = 0;
            let summary = gguf_write::write_model(&path, &merged, "tiny", quant, &[], |_, _| calls += 1).unwrap();
            assert_eq!(calls, merged.tensors.len());
            let ct = gguf_content(&path);
            assert_eq!(ct.tensor_infos.len(), merged.tensors.len());
            assert_eq!(summary.tensors, merged.tensors.len());
            assert_eq!(ct.metadata["general.file_type"].to_u32().unwrap(), quant.file_type());
            for (hf, t) in &merged.tensors {
                let g = gguf_write::gguf_name_for_hf(hf, merged.config.architecture).unwrap();
                let info = &ct.tensor_infos[&g];
                assert_eq!(info.shape.dims(), t.dims(), "{name} {quant:?} {g}");
                let want = gguf_write::tensor_type(quant, &g, t.dims(), merged.config.num_layers, merged.config.tie_word_embeddings);
                assert_eq!(info.ggml_dtype, want, "{g}");
            }
            let reloaded = Decoder::load_quant(&ModelFiles::Gguf(path.clone()), DType::F32, &Device::Cpu, QuantMode::None).unwrap();
            assert_eq!(reloaded.config.hidden_size, f.base.config.hidden_size);
            assert_eq!(reloaded.config.tie_word_embeddings, f.base.config.tie_word_embeddings);
            assert_eq!(reloaded.config.attention_bias, f.base.config.attention_bias);
            let logits = reloaded.forward(&f.input_ids, Some(&f.attention_mask), None).unwrap();
            let d = max_abs(&logits, &f.io["logits_init"]);
            eprintln!("{name}: GGUF {} logits vs transformers+PEFT max |diff| {d:e} ({} bytes)", quant.as_str(), summary.bytes);
            assert!(d < bound, "{name} {quant:?}: {d}");
        }
    }
}

#[test]
fn lora_gguf_holds_the_adapter_in_llama_cpp_layout() {
    let f = fixture("llama");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("adapter.gguf");
    gguf_write::write_lora(&path, &f.adapter, &f.base.config, "tiny-lora").unwrap();
    let ct = gguf_content(&path);
    assert_eq!(ct.metadata["general.type"].to_string().unwrap(), "adapter");
    assert_eq!(ct.metadata["adapter.type"].to_string().unwrap(), "lora");
    let alpha = ct.metadata["adapter.lora.alpha"].to_f32().unwrap() as f64;
    assert!((alpha / f.adapter.config.r as f64 - f.adapter.config.scale()).abs() < 1e-6);
    let mut file = std::fs::File::open(&path).unwrap();
    for (layer, pairs) in f.adapter.layers.iter().enumerate() {
        for (target, pair) in pairs {
            let g = gguf_write::gguf_name_for_hf(&format!("model.layers.{layer}.{}.weight", target.path()), f.base.config.architecture).unwrap();
            let a = ct.tensor(&mut file, &format!("{g}.lora_a"), &Device::Cpu).unwrap().dequantize(&Device::Cpu).unwrap();
            let b = ct.tensor(&mut file, &format!("{g}.lora_b"), &Device::Cpu).unwrap().dequantize(&Device::Cpu).unwrap();
            assert_eq!(max_abs(&a, pair.a.as_tensor()), 0.0, "{g} lora_a");
            let heads = match target.module() {
                "q_proj" => Some(f.base.config.num_heads),
                "k_proj" => Some(f.base.config.num_kv_heads),
                _ => None,
            };
            let b = match heads {
                Some(h) => whetstone_engine::weights::unpermute_qk(&b, h).unwrap(),
                None => b,
            };
            assert_eq!(max_abs(&b, pair.b.as_tensor()), 0.0, "{g} lora_b");
        }
    }
    assert_eq!(ct.tensor_infos.len(), 2 * 7 * f.base.config.num_layers);
}

/// Our gemma2 GGUF holds what llama.cpp's converter writes for the same base (the fixture's
/// `model.gguf`): the same tensor names, shapes and values (norms with 1 added) and the same keys.
#[test]
fn gemma2_gguf_matches_llama_cpps_converter() {
    let f = fixture("gemma2");
    let mut merged = merge::merge(&f.files, None, QuantMode::None, DType::F32).unwrap();
    // The fixture's query_pre_attn_scalar is not the head size, which a GGUF cannot express (see the
    // refusal test); with the head size the file is writable.
    merged.config.query_pre_attn_scalar = Some(merged.config.head_dim as f64);
    let tmp = tempfile::tempdir().unwrap();
    let ours_path = tmp.path().join("ours.gguf");
    gguf_write::write_model(&ours_path, &merged, "tiny-gemma2", GgufQuant::F16, &[], |_, _| {}).unwrap();
    let ours = gguf_content(&ours_path);
    let theirs_path = dir("gemma2").join("model.gguf");
    let theirs = gguf_content(&theirs_path);
    let mut names: Vec<&String> = theirs.tensor_infos.keys().collect();
    names.sort();
    let mut ours_names: Vec<&String> = ours.tensor_infos.keys().collect();
    ours_names.sort();
    assert_eq!(ours_names, names);
    let (mut fo, mut ft) = (std::fs::File::open(&ours_path).unwrap(), std::fs::File::open(&theirs_path).unwrap());
    for name in names {
        let a = ours.tensor(&mut fo, name, &Device::Cpu).unwrap().dequantize(&Device::Cpu).unwrap();
        let b = theirs.tensor(&mut ft, name, &Device::Cpu).unwrap().dequantize(&Device::Cpu).unwrap();
        assert_eq!(a.dims(), b.dims(), "{name}");
        // f16 rounding on 2-D weights; 1-D norms are kept f32 and equal exactly.
        let bound = if a.dims().len() == 1 { 0.0 } else { 1e-3 };
        assert!(max_abs(&a, &b) <= bound, "{name}: {}", max_abs(&a, &b));
    }
    for key in [
        "gemma2.context_length",
        "gemma2.embedding_length",
        "gemma2.block_count",
        "gemma2.feed_forward_length",
        "gemma2.attention.head_count",
        "gemma2.attention.head_count_kv",
        "gemma2.attention.key_length",
        "gemma2.attention.value_length",
        "gemma2.attention.sliding_window",
    ] {
        assert_eq!(ours.metadata[key].to_u32().unwrap(), theirs.metadata[key].to_u32().unwrap(), "{key}");
    }
    for key in ["gemma2.attn_logit_softcapping", "gemma2.final_logit_softcapping", "gemma2.attention.layer_norm_rms_epsilon"] {
        assert_eq!(ours.metadata[key].to_f32().unwrap(), theirs.metadata[key].to_f32().unwrap(), "{key}");
    }
    assert_eq!(ours.metadata["general.architecture"].to_string().unwrap(), "gemma2");
}

/// A Gemma 2 that llama.cpp would run with another attention scale is refused with a typed error,
/// and no file is left behind.
#[test]
fn gemma2_gguf_that_llama_cpp_would_misread_is_refused() {
    let f = fixture("gemma2");
    let merged = merge::merge(&f.files, Some(&f.adapter), QuantMode::None, DType::F32).unwrap();
    assert_eq!(merged.config.query_pre_attn_scalar, Some(20.0));
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.gguf");
    let err = gguf_write::write_model(&path, &merged, "tiny", GgufQuant::F16, &[], |_, _| {}).unwrap_err();
    assert_eq!(err.code(), "export_unsupported");
    assert!(err.to_string().contains("query_pre_attn_scalar"), "{err}");
    assert!(!path.exists());
    let err = gguf_write::write_lora(&tmp.path().join("lora.gguf"), &f.adapter, &merged.config, "tiny").unwrap_err();
    assert_eq!(err.code(), "export_unsupported");
}
