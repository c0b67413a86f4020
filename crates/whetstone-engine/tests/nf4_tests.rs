//! NF4 against bitsandbytes 0.50.2 on the committed fixtures (`scripts/parity/make_nf4_fixtures.py`):
//! codes, absmax constants and dequantized values must be identical, bit for bit.

use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use whetstone_engine::nf4::{dynamic_map, quantize_blockwise_8bit, Absmax, Nf4, ABSMAX_BLOCK, NF4_LEVELS};

const CASES: [&str; 6] = ["f32_16x64", "f32_24x96", "f32_7x45", "f32_64x320", "bf16_32x128", "f32_heavy_8x128"];

fn fixture() -> HashMap<String, Tensor> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nf4/nf4.safetensors");
    candle_core::safetensors::load(p, &Device::Cpu).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
}

fn f32s(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Asserts equal bit patterns, naming the first difference instead of printing both vectors.
fn same(ours: &[u32], want: &[u32], what: &str) {
    assert_eq!(ours.len(), want.len(), "{what}: lengths");
    if let Some(i) = (0..ours.len()).find(|&i| ours[i] != want[i]) {
        panic!(
            "{what}: element {i} is {} where bitsandbytes has {}",
            f32::from_bits(ours[i]),
            f32::from_bits(want[i])
        );
    }
}

fn u8s(t: &Tensor) -> Vec<u8> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn tables_are_bitsandbytes() {
    let fx = fixture();
    assert_eq!(f32s(&NF4_LEVELS), bits(&fx["nf4_code"]));
    assert_eq!(f32s(&dynamic_map()), bits(&fx["dynamic_code"]));
    assert_eq!(NF4_LEVELS[7], 0.0);
}

#[test]
fn quantize_matches_bitsandbytes() {
    let fx = fixture();
    for case in CASES {
        let w = &fx[&format!("{case}.weight")];
        let q = Nf4::quantize_tensor(w, false).unwrap();
        assert_eq!(q.shape, w.dims());
        assert_eq!(q.packed, u8s(&fx[&format!("{case}.packed")]), "{case}: codes");
        let Absmax::Plain(absmax) = &q.absmax else { panic!("plain absmax expected") };
        same(&f32s(absmax), &bits(&fx[&format!("{case}.absmax")]), &format!("{case}: absmax"));

        let dq = Nf4::quantize_tensor(w, true).unwrap();
        assert_eq!(dq.packed, q.packed, "{case}: codes with double quantization");
        let Absmax::Double { q: qa, offset, scale } = &dq.absmax else { panic!("double absmax expected") };
        assert_eq!(offset.to_bits(), bits(&fx[&format!("{case}.dq.offset")])[0], "{case}: offset");
        assert_eq!(qa, &u8s(&fx[&format!("{case}.dq.qabsmax")]), "{case}: 8-bit absmax");
        same(&f32s(scale), &bits(&fx[&format!("{case}.dq.absmax2")]), &format!("{case}: second-level absmax"));
        assert_eq!(scale.len(), absmax.len().div_ceil(ABSMAX_BLOCK));
    }
}

#[test]
fn dequantize_matches_bitsandbytes() {
    let fx = fixture();
    for case in CASES {
        let w = &fx[&format!("{case}.weight")];
        for (double, key) in [(false, "dequant"), (true, "dq.dequant")] {
            let q = Nf4::quantize_tensor(w, double).unwrap();
            let want = bits(&fx[&format!("{case}.{key}")]);
            same(&f32s(&q.dequantize_values()), &want, &format!("{case}: {key} (host)"));
            let dev = q.to_device(&Device::Cpu).unwrap();
            // The tensor-op path is what runs on a GPU; on the CPU it must give the same bits.
            let ops = dev.dequantize_ops(DType::F32).unwrap();
            assert_eq!(ops.dims(), w.dims());
            same(&bits(&ops), &want, &format!("{case}: {key} (tensor ops)"));
            same(&bits(&dev.dequantize(DType::F32).unwrap()), &want, &format!("{case}: {key} (device host path)"));
            // bf16 output is the f32 result rounded, as bitsandbytes' bf16 dequantization.
            let bf = dev.dequantize_ops(DType::BF16).unwrap();
            let want_bf = fx[&format!("{case}.{key}")].to_dtype(DType::BF16).unwrap();
            same(&bits(&bf), &bits(&want_bf), &format!("{case}: {key} in bf16"));
        }
    }
}

#[test]
fn dequantize_from_stored_parts_matches_bitsandbytes() {
    // Dequantization alone, from bitsandbytes' own codes and constants (not ours).
    let fx = fixture();
    for case in CASES {
        let w = &fx[&format!("{case}.weight")];
        let q = Nf4 {
            shape: w.dims().to_vec(),
            packed: u8s(&fx[&format!("{case}.packed")]),
            absmax: Absmax::Double {
                q: u8s(&fx[&format!("{case}.dq.qabsmax")]),
                offset: fx[&format!("{case}.dq.offset")].to_vec1::<f32>().unwrap()[0],
                scale: fx[&format!("{case}.dq.absmax2")].to_vec1().unwrap(),
            },
        };
        same(&f32s(&q.dequantize_values()), &bits(&fx[&format!("{case}.dq.dequant")]), case);
    }
}

#[test]
fn storage_is_about_4_127_bits_per_weight() {
    let n: usize = 4096 * 4096;
    let values: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 1000.0).collect();
    let q = Nf4::quantize(&values, &[4096, 4096], true);
    let bits = q.storage_bytes() as f64 * 8.0 / n as f64;
    assert!((bits - 4.127).abs() < 0.001, "{bits} bits per weight");
    let plain = Nf4::quantize(&values, &[4096, 4096], false);
    assert!((plain.storage_bytes() as f64 * 8.0 / n as f64 - 4.5).abs() < 1e-9);
}

#[test]
fn zero_block_and_blockwise_edges() {
    // An all-zero block quantizes to the exact zero level and back to 0.
    let mut v = vec![0f32; 128];
    v[64] = 1.0;
    let q = Nf4::quantize(&v, &[2, 64], true);
    let back = q.dequantize_values();
    assert!(back[..64].iter().all(|&x| x == 0.0));
    assert_eq!(back[64], 1.0);
    // 8-bit blockwise: ±absmax map to the ends of the dynamic map.
    let (codes, absmax) = quantize_blockwise_8bit(&[-2.0, 0.0, 2.0], &dynamic_map(), 256);
    assert_eq!(absmax, vec![2.0]);
    assert_eq!(codes[2], 255);
    assert!(dynamic_map()[codes[0] as usize] < -0.99);
}
