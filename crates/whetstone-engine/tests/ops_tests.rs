//! Each hand-written backward against candle's autograd through composed, differentiable ops.

use candle_core::{DType, Device, Tensor, Var, D};
use whetstone_engine::attention::{AttnMask, MaskRule};
use whetstone_engine::fused::Dropout;
use whetstone_engine::ops::{self, FrozenLinear, RopeTable};
use whetstone_engine::rng::Rng;

fn rand(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    let mut r = Rng::new(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| r.uniform(-1.0, 1.0) as f32).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
}

fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let a: Vec<f64> = a.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f64> = b.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = a.iter().map(|x| x.abs()).fold(0.0, f64::max).max(1e-12);
    a.iter().zip(&b).map(|(x, y)| (x - y).abs() / scale).fold(0.0, f64::max)
}

/// Gradient of `sum(f(x) * w)` with respect to `x` for a random weighting `w`.
fn grad_of(x: &Tensor, f: impl Fn(&Tensor) -> Tensor, seed: u64) -> (Tensor, Tensor) {
    let v = Var::from_tensor(x).unwrap();
    let y = f(v.as_tensor());
    let w = rand(y.dims(), seed, y.dtype());
    let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
    (y.detach(), g.get(v.as_tensor()).unwrap().clone())
}

fn check(name: &str, x: &Tensor, ours: impl Fn(&Tensor) -> Tensor, reference: impl Fn(&Tensor) -> Tensor) {
    let (y1, g1) = grad_of(x, ours, 99);
    let (y2, g2) = grad_of(x, reference, 99);
    let (ey, eg) = (max_rel(&y1, &y2), max_rel(&g1, &g2));
    assert!(ey < 1e-5, "{name}: forward differs by {ey}");
    assert!(eg < 1e-5, "{name}: gradient differs by {eg}");
}

#[test]
fn frozen_linear_matches_matmul() {
    let w = rand(&[7, 5], 1, DType::F32);
    let b = rand(&[7], 2, DType::F32);
    let lin = FrozenLinear::new(w.clone(), Some(b.clone()));
    let x = rand(&[2, 3, 5], 3, DType::F32);
    check("linear", &x, |x| lin.forward(x).unwrap(), |x| x.broadcast_matmul(&w.t().unwrap()).unwrap().broadcast_add(&b).unwrap());
}

#[test]
fn rms_norm_matches_composed() {
    let w = rand(&[16], 4, DType::F32);
    let x = rand(&[2, 3, 16], 5, DType::F32);
    check("rms_norm", &x, |x| ops::rms_norm(x, &w, 1e-5).unwrap(), |x| candle_nn::ops::rms_norm_slow(x, &w, 1e-5).unwrap());
}

#[test]
fn rope_matches_rope_slow() {
    let inv: Vec<f32> = (0..4).map(|i| 1.0 / 10000f32.powf(2.0 * i as f32 / 8.0)).collect();
    let table = RopeTable::new(&inv, 0, 6, DType::F32, &Device::Cpu).unwrap();
    // [b, t, h, d]
    let x = rand(&[2, 6, 3, 8], 6, DType::F32);
    check(
        "rope",
        &x,
        |x| ops::rope(x, &table).unwrap(),
        |x| {
            let hm = x.transpose(1, 2).unwrap().contiguous().unwrap();
            candle_nn::rotary_emb::rope_slow(&hm, &table.cos, &table.sin).unwrap().transpose(1, 2).unwrap().contiguous().unwrap()
        },
    );
}

#[test]
fn attention_matches_composed_with_gqa_and_mask() {
    // Row 1 padded on the right.
    attention_case(4, 2, 5, 8, 0, 2);
}

#[test]
fn attention_in_several_query_tiles_matches_composed_with_padding_on_either_side() {
    // Longer than three tiles of queries; row 0 padded on the left, so its first queries see no key
    // at all, row 1 on the right.
    attention_case(6, 2, 75, 8, 9, 13);
}

#[test]
fn attention_over_several_key_blocks_matches_composed() {
    // Three tiles of queries and two blocks of keys: the online softmax rescales its running sums.
    attention_case(4, 2, 150, 8, 5, 7);
}

#[test]
fn attention_with_a_window_after_cached_keys_matches_composed() {
    // 70 new queries after 90 cached keys, each seeing the 100 keys before it: the tiles' key
    // ranges start past zero and span two blocks.
    let (b, h, kv, t, offset, d, w) = (1, 4, 2, 70, 90, 8, 100);
    let s = offset + t;
    let q = rand(&[b, t, h, d], 71, DType::F32);
    let k = rand(&[b, s, kv, d], 72, DType::F32);
    let v = rand(&[b, s, kv, d], 73, DType::F32);
    let rule = AttnMask::rule(MaskRule { batch: b, queries: t, keys: s, offset, window: Some(w), present: None }, DType::F32, &Device::Cpu);
    let table = rule.as_table().unwrap().clone();
    let m = table.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let at = |qi: usize, key: usize| m[qi * s + key];
    assert_eq!((at(0, 0), at(0, 90), at(0, 91)), (0.0, 0.0, -1e9), "query 0, at position 90, sees keys 0 to 90");
    assert_eq!((at(69, 59), at(69, 60), at(69, 159)), (-1e9, 0.0, 0.0), "query 69, at 159, sees the 100 keys 60 to 159");
    let reference = |q: &Tensor, k: &Tensor, v: &Tensor| -> Tensor {
        let hm = |x: &Tensor| x.transpose(1, 2).unwrap().contiguous().unwrap();
        let (q, k, v) = (&hm(q), &hm(k), &hm(v));
        let rep = |x: &Tensor| x.unsqueeze(2).unwrap().expand((b, kv, h / kv, s, d)).unwrap().reshape((b, h, s, d)).unwrap();
        let (k, v) = (rep(k), rep(v));
        let sc = (q.matmul(&k.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
        let sc = sc.broadcast_add(&table.squeeze(1).unwrap()).unwrap();
        let p = candle_nn::ops::softmax(&sc, D::Minus1).unwrap();
        p.matmul(&v).unwrap().transpose(1, 2).unwrap().contiguous().unwrap().reshape((b, t, h * d)).unwrap()
    };
    check("windowed q", &q, |x| ops::attention(x, &k, &v, Some(&rule)).unwrap(), |x| reference(x, &k, &v));
    check("windowed k", &k, |x| ops::attention(&q, x, &v, Some(&rule)).unwrap(), |x| reference(&q, x, &v));
    check("windowed v", &v, |x| ops::attention(&q, &k, x, Some(&rule)).unwrap(), |x| reference(&q, &k, x));
}

fn attention_case(h: usize, kv: usize, t: usize, d: usize, left_pad0: usize, right_pad1: usize) {
    let b = 2;
    let q = rand(&[b, t, h, d], 7, DType::F32);
    let k = rand(&[b, t, kv, d], 8, DType::F32);
    let v = rand(&[b, t, kv, d], 9, DType::F32);
    let mut m = vec![0f32; b * t * t];
    for bi in 0..b {
        for i in 0..t {
            for j in 0..t {
                let pad = (bi == 0 && j < left_pad0) || (bi == 1 && j >= t - right_pad1);
                if j > i || pad {
                    m[bi * t * t + i * t + j] = -1e9;
                }
            }
        }
    }
    let mask = Tensor::from_vec(m, (b, 1, 1, t, t), &Device::Cpu).unwrap();
    let table = AttnMask::table(mask.clone());
    // The same mask as a rule: padding keys absent.
    let present = (0..b * t).map(|i| !((i / t == 0 && i % t < left_pad0) || (i / t == 1 && i % t >= t - right_pad1))).collect();
    let rule = AttnMask::rule(MaskRule { batch: b, queries: t, keys: t, offset: 0, window: None, present: Some(present) }, DType::F32, &Device::Cpu);
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!((rule.as_table().unwrap().dims(), flat(rule.as_table().unwrap())), (mask.dims(), flat(&mask)), "the rule's table is the mask");
    let reference = |q: &Tensor, k: &Tensor, v: &Tensor| -> Tensor {
        let hm = |x: &Tensor| x.transpose(1, 2).unwrap().contiguous().unwrap();
        let (q, k, v) = (&hm(q), &hm(k), &hm(v));
        let rep = |x: &Tensor| -> Tensor {
            let (b, kv, t, d) = x.dims4().unwrap();
            x.unsqueeze(2).unwrap().expand((b, kv, h / kv, t, d)).unwrap().reshape((b, h, t, d)).unwrap()
        };
        let (k, v) = (rep(k), rep(v));
        let s = (q.matmul(&k.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
        let s = s.broadcast_add(&mask.squeeze(1).unwrap()).unwrap();
        let p = candle_nn::ops::softmax(&s, D::Minus1).unwrap();
        p.matmul(&v.contiguous().unwrap()).unwrap().transpose(1, 2).unwrap().contiguous().unwrap().reshape((b, t, h * d)).unwrap()
    };
    for (name, mask) in [("table", &table), ("rule", &rule)] {
        for which in 0..3 {
            let ours = |x: &Tensor| match which {
                0 => ops::attention(x, &k, &v, Some(mask)).unwrap(),
                1 => ops::attention(&q, x, &v, Some(mask)).unwrap(),
                _ => ops::attention(&q, &k, x, Some(mask)).unwrap(),
            };
            let refr = |x: &Tensor| match which {
                0 => reference(x, &k, &v),
                1 => reference(&q, x, &v),
                _ => reference(&q, &k, x),
            };
            let x = [&q, &k, &v][which];
            check(&format!("attention arg {which} (t = {t}, mask as {name})"), x, ours, refr);
        }
    }
}

#[test]
fn lora_linear_matches_composed_for_every_input() {
    let w = rand(&[7, 5], 11, DType::F32);
    let bias = rand(&[7], 12, DType::F32);
    let lin = FrozenLinear::new(w.clone(), Some(bias.clone()));
    let x = rand(&[2, 3, 5], 13, DType::F32);
    let a = rand(&[2, 5], 14, DType::F32);
    let b = rand(&[7, 2], 15, DType::F32);
    let drop = Dropout { seed: 16, p: 0.4 };
    let mask = Tensor::from_vec(drop.mask(30), (2, 3, 5), &Device::Cpu).unwrap();
    let kept = mask.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(kept.iter().any(|&m| m == 0.0) && kept.iter().any(|&m| (m - 1.0 / 0.6).abs() < 1e-6), "{kept:?}");
    let scale = 1.5;
    let reference = |x: &Tensor, a: &Tensor, b: &Tensor| -> Tensor {
        let base = x.broadcast_matmul(&w.t().unwrap()).unwrap().broadcast_add(&bias).unwrap();
        let xm = (x * &mask).unwrap();
        let low = xm.broadcast_matmul(&a.t().unwrap()).unwrap().broadcast_matmul(&b.t().unwrap()).unwrap();
        (base + (low * scale).unwrap()).unwrap()
    };
    let ours = |x: &Tensor, a: &Tensor, b: &Tensor| ops::lora_linear(x, &lin, a, b, scale, Some(drop)).unwrap();
    check("lora x", &x, |t| ours(t, &a, &b), |t| reference(t, &a, &b));
    check("lora A", &a, |t| ours(&x, t, &b), |t| reference(&x, t, &b));
    check("lora B", &b, |t| ours(&x, &a, t), |t| reference(&x, &a, t));
}

#[test]
fn lora_linear_with_dropout_over_several_row_blocks_matches_composed() {
    // 150 rows: the masked input is made in blocks of rows, the last one short.
    let w = rand(&[7, 12], 81, DType::F32);
    let lin = FrozenLinear::new(w.clone(), None);
    let x = rand(&[3, 50, 12], 82, DType::F32);
    let a = rand(&[3, 12], 83, DType::F32);
    let b = rand(&[7, 3], 84, DType::F32);
    let drop = Dropout { seed: 85, p: 0.3 };
    let mask = Tensor::from_vec(drop.mask(1800), (3, 50, 12), &Device::Cpu).unwrap();
    let reference = |x: &Tensor, a: &Tensor, b: &Tensor| -> Tensor {
        let base = x.broadcast_matmul(&w.t().unwrap()).unwrap();
        let low = (x * &mask).unwrap().broadcast_matmul(&a.t().unwrap()).unwrap().broadcast_matmul(&b.t().unwrap()).unwrap();
        (base + (low * 0.9).unwrap()).unwrap()
    };
    let ours = |x: &Tensor, a: &Tensor, b: &Tensor| ops::lora_linear(x, &lin, a, b, 0.9, Some(drop)).unwrap();
    check("blocked lora x", &x, |t| ours(t, &a, &b), |t| reference(t, &a, &b));
    check("blocked lora A", &a, |t| ours(&x, t, &b), |t| reference(&x, t, &b));
    check("blocked lora B", &b, |t| ours(&x, &a, t), |t| reference(&x, &a, t));
}

#[test]
fn swiglu_and_residual_match_composed() {
    let g = rand(&[3, 9], 21, DType::F32);
    let u = rand(&[3, 9], 22, DType::F32);
    check("swiglu gate", &g, |t| ops::swiglu(t, &u).unwrap(), |t| (t.silu().unwrap() * &u).unwrap());
    check("swiglu up", &u, |t| ops::swiglu(&g, t).unwrap(), |t| (g.silu().unwrap() * t).unwrap());
    check("residual", &g, |t| ops::residual(t, &u).unwrap(), |t| (t + &u).unwrap());
    check("residual rhs", &u, |t| ops::residual(&g, t).unwrap(), |t| (&g + t).unwrap());
}

#[test]
fn chunked_linear_cross_entropy_matches_full_logits() {
    // More rows than one chunk, so the chunk boundaries are exercised.
    let n = 600;
    let hs = rand(&[n, 8], 31, DType::F32);
    let w = rand(&[50, 8], 32, DType::F32);
    let t: Vec<u32> = (0..n as u32).map(|i| (i * 7) % 50).collect();
    let targets = Tensor::from_vec(t, n, &Device::Cpu).unwrap();
    check(
        "linear cross-entropy",
        &hs,
        |x| ops::linear_cross_entropy_sum(x, &w, &targets).unwrap().reshape(1).unwrap(),
        |x| {
            let logits = x.matmul(&w.t().unwrap()).unwrap();
            let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
            lsm.gather(&targets.unsqueeze(1).unwrap(), 1).unwrap().sum_all().unwrap().neg().unwrap().reshape(1).unwrap()
        },
    );
}

#[test]
fn geglu_matches_composed_tanh_gelu() {
    // PyTorch's gelu_pytorch_tanh written out, differentiated by candle's autograd.
    let gelu_tanh = |z: &Tensor| -> Tensor {
        let inner = ((z + (z.powf(3.0).unwrap() * 0.044715).unwrap()).unwrap() * (2.0 / std::f64::consts::PI).sqrt()).unwrap();
        ((z * (inner.tanh().unwrap() + 1.0).unwrap()).unwrap() * 0.5).unwrap()
    };
    for dtype in [DType::F32, DType::F64] {
        let g = (rand(&[3, 9], 41, dtype) * 3.0).unwrap();
        let u = rand(&[3, 9], 42, dtype);
        check("geglu gate", &g, |t| ops::geglu(t, &u).unwrap(), |t| (gelu_tanh(t) * &u).unwrap());
        check("geglu up", &u, |t| ops::geglu(&g, t).unwrap(), |t| (gelu_tanh(&g) * t).unwrap());
    }
}

#[test]
fn soft_capped_scaled_attention_matches_composed() {
    let (b, h, kv, t, d) = (1, 4, 1, 6, 8);
    let q = (rand(&[b, t, h, d], 51, DType::F32) * 2.0).unwrap();
    let k = (rand(&[b, t, kv, d], 52, DType::F32) * 2.0).unwrap();
    let v = rand(&[b, t, kv, d], 53, DType::F32);
    // Causal with a window of 3.
    let m: Vec<f32> = (0..t).flat_map(|i| (0..t).map(move |j| if j > i || i - j >= 3 { -1e9 } else { 0.0 })).collect();
    let mask = Tensor::from_vec(m, (1, 1, 1, t, t), &Device::Cpu).unwrap();
    let rule = AttnMask::rule(MaskRule { batch: b, queries: t, keys: t, offset: 0, window: Some(3), present: None }, DType::F32, &Device::Cpu);
    let (scale, cap) = (0.3, 0.8);
    let opts = ops::ScoreOptions { scale, softcap: Some(cap) };
    let reference = |q: &Tensor, k: &Tensor, v: &Tensor| -> Tensor {
        let hm = |x: &Tensor| x.transpose(1, 2).unwrap().contiguous().unwrap();
        let (q, k, v) = (&hm(q), &hm(k), &hm(v));
        let rep = |x: &Tensor| x.broadcast_as((b, h, t, d)).unwrap().contiguous().unwrap();
        let (k, v) = (rep(k), rep(v));
        let s = (q.matmul(&k.t().unwrap()).unwrap() * scale).unwrap();
        let s = (((s / cap).unwrap().tanh().unwrap()) * cap).unwrap();
        let s = s.broadcast_add(&mask.squeeze(1).unwrap()).unwrap();
        let p = candle_nn::ops::softmax(&s, D::Minus1).unwrap();
        p.matmul(&v).unwrap().transpose(1, 2).unwrap().contiguous().unwrap().reshape((b, t, h * d)).unwrap()
    };
    for which in 0..3 {
        let ours = |x: &Tensor| match which {
            0 => ops::attention_with(x, &k, &v, Some(&rule), opts).unwrap(),
            1 => ops::attention_with(&q, x, &v, Some(&rule), opts).unwrap(),
            _ => ops::attention_with(&q, &k, x, Some(&rule), opts).unwrap(),
        };
        let refr = |x: &Tensor| match which {
            0 => reference(x, &k, &v),
            1 => reference(&q, x, &v),
            _ => reference(&q, &k, x),
        };
        check(&format!("capped attention arg {which}"), [&q, &k, &v][which], ours, refr);
    }
}

#[test]
fn soft_capped_cross_entropy_matches_full_logits_fused_and_composed() {
    // f32 takes the fused CPU kernel, f64 the composed chunks; both against autograd on capped logits.
    for dtype in [DType::F32, DType::F64] {
        let n = 300;
        let hs = (rand(&[n, 8], 61, dtype) * 2.0).unwrap();
        let w = rand(&[40, 8], 62, dtype);
        let t: Vec<u32> = (0..n as u32).map(|i| (i * 11) % 40).collect();
        let targets = Tensor::from_vec(t, n, &Device::Cpu).unwrap();
        let cap = 1.5;
        check(
            "capped cross-entropy",
            &hs,
            |x| ops::linear_cross_entropy_sum_capped(x, &w, &targets, Some(cap)).unwrap().reshape(1).unwrap(),
            |x| {
                let logits = x.matmul(&w.t().unwrap()).unwrap();
                let logits = ((logits / cap).unwrap().tanh().unwrap() * cap).unwrap();
                let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
                lsm.gather(&targets.unsqueeze(1).unwrap(), 1).unwrap().sum_all().unwrap().neg().unwrap().reshape(1).unwrap()
            },
        );
    }
}

#[test]
fn norm_with_a_wider_weight_runs_in_the_weights_dtype() {
    // Gemma's 1 + weight is held in f32 while activations may be f64 or f32; the gradient flows in both.
    let w = (rand(&[16], 71, DType::F32) + 1.0).unwrap();
    let x = rand(&[2, 3, 16], 72, DType::F32);
    check("rms_norm 1+w", &x, |x| ops::rms_norm(x, &w, 1e-6).unwrap(), |x| candle_nn::ops::rms_norm_slow(x, &w, 1e-6).unwrap());
    let xb = x.to_dtype(DType::BF16).unwrap();
    let y = ops::rms_norm(&xb, &w, 1e-6).unwrap();
    assert_eq!(y.dtype(), DType::BF16);
    let want = candle_nn::ops::rms_norm_slow(&x, &w, 1e-6).unwrap();
    assert!(max_rel(&y, &want) < 1e-2);
}

#[test]
fn dropout_masks_come_from_their_seed_alone_and_drop_about_p() {
    let d = Dropout { seed: 7, p: 0.05 };
    let m = d.mask(200_000);
    assert_eq!(m, d.mask(200_000), "the same seed draws the same mask");
    assert_eq!(&m[..1000], &d.mask(1000)[..], "a mask's elements do not depend on its length");
    let dropped = m.iter().filter(|&&v| v == 0.0).count() as f64 / m.len() as f64;
    assert!((dropped - 0.05).abs() < 0.003, "dropped {dropped}");
    assert!(m.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.95).abs() < 1e-6));
    assert_ne!(m, Dropout { seed: 8, p: 0.05 }.mask(200_000), "another seed draws another mask");
    let bits = d.bits(200_000);
    assert_eq!(bits.kept_count(), m.iter().filter(|&&v| v != 0.0).count(), "the bits keep what the mask keeps");
    assert!((0..m.len()).all(|i| bits.kept(i) == (m[i] != 0.0)));
    assert_eq!(Dropout { seed: 7, p: 1.0 }.bits(100).kept_count(), 0, "p = 1 drops everything");
    assert_eq!(Dropout { seed: 7, p: 0.0 }.bits(100).kept_count(), 100, "p = 0 keeps everything");
    let x: Vec<f32> = (0..200_000).map(|i| (i % 17) as f32 - 8.0).collect();
    let applied = d.apply(&x);
    assert!(applied.iter().zip(&x).zip(&m).all(|((a, x), m)| *a == x * m));
    let mut y = vec![1f32; x.len()];
    d.accumulate(&mut y, &x, 0.5);
    assert!(y.iter().zip(&applied).all(|(y, a)| (y - (1.0 + 0.5 * a)).abs() < 1e-5));
    // The kernels on a stretch of the mask, from any start and of any length: between byte
    // boundaries they read the bits a byte at a time, before and after them one by one.
    for start in (0..140).chain([1000, 1003, 4096]) {
        for len in [1, 7, 8, 9, 63, 64, 65, 200] {
            let xs = &x[..len];
            let mut out = vec![9f32; len];
            bits.apply_at(start, xs, &mut out);
            let keep = 1.0 / 0.95f32;
            let want: Vec<f32> = (0..len).map(|j| if bits.kept(start + j) { xs[j] * keep } else { 0.0 }).collect();
            assert_eq!(out, want, "apply_at from {start}, {len} elements");
            let mut y = vec![1f32; len];
            bits.accumulate_at(start, &mut y, xs, 0.5);
            let want: Vec<f32> = (0..len).map(|j| if bits.kept(start + j) { 1.0 + xs[j] * (0.5 * keep) } else { 1.0 }).collect();
            assert_eq!(y, want, "accumulate_at from {start}, {len} elements");
        }
    }
}

#[test]
fn rope_inside_attention_matches_rope_then_attention() {
    let (b, h, kv, t, d) = (2, 4, 2, 40, 8);
    let inv_freq: Vec<f32> = (0..d / 2).map(|i| 1.0 / 10000f32.powf(2.0 * i as f32 / d as f32)).collect();
    let table = RopeTable::new(&inv_freq, 0, t, DType::F32, &Device::Cpu).unwrap();
    let q = rand(&[b, t, h, d], 41, DType::F32);
    let k = rand(&[b, t, kv, d], 42, DType::F32);
    let v = rand(&[b, t, kv, d], 43, DType::F32);
    let m: Vec<f32> = (0..t * t).map(|i| if i % t > i / t { -1e9 } else { 0.0 }).collect();
    let mask = AttnMask::table(Tensor::from_vec(m, (1, 1, 1, t, t), &Device::Cpu).unwrap());
    let separate = |q: &Tensor, k: &Tensor, v: &Tensor| {
        ops::attention(&ops::rope(q, &table).unwrap(), &ops::rope(k, &table).unwrap(), v, Some(&mask)).unwrap()
    };
    let fused = |q: &Tensor, k: &Tensor, v: &Tensor| ops::rope_attention(q, k, v, Some(&mask), &table, ops::ScoreOptions::plain(d)).unwrap();
    check("rope attention q", &q, |x| fused(x, &k, &v), |x| separate(x, &k, &v));
    check("rope attention k", &k, |x| fused(&q, x, &v), |x| separate(&q, x, &v));
    check("rope attention v", &v, |x| fused(&q, &k, x), |x| separate(&q, &k, x));
}

#[test]
fn lora_linear_closing_a_residual_matches_the_two_apart() {
    let w = rand(&[6, 5], 51, DType::F32);
    let lin = FrozenLinear::new(w, None);
    let res = rand(&[2, 3, 6], 52, DType::F32);
    let x = rand(&[2, 3, 5], 53, DType::F32);
    let a = rand(&[2, 5], 54, DType::F32);
    let b = rand(&[6, 2], 55, DType::F32);
    let drop = Some(Dropout { seed: 3, p: 0.3 });
    let apart = |r: &Tensor, x: &Tensor, a: &Tensor, b: &Tensor| ops::residual(r, &ops::lora_linear(x, &lin, a, b, 0.7, drop).unwrap()).unwrap();
    let joined = |r: &Tensor, x: &Tensor, a: &Tensor, b: &Tensor| ops::lora_linear_residual(r, x, &lin, a, b, 0.7, drop).unwrap();
    check("residual input", &res, |t| joined(t, &x, &a, &b), |t| apart(t, &x, &a, &b));
    check("projection input", &x, |t| joined(&res, t, &a, &b), |t| apart(&res, t, &a, &b));
    check("lora A", &a, |t| joined(&res, &x, t, &b), |t| apart(&res, &x, t, &b));
    check("lora B", &b, |t| joined(&res, &x, &a, t), |t| apart(&res, &x, &a, t));
}

#[test]
fn swiglu_inside_the_down_projection_matches_the_two_apart() {
    let w = rand(&[4, 9], 61, DType::F32);
    let lin = FrozenLinear::new(w, None);
    let g = rand(&[2, 3, 9], 62, DType::F32);
    let u = rand(&[2, 3, 9], 63, DType::F32);
    let a = rand(&[2, 9], 64, DType::F32);
    let b = rand(&[4, 2], 65, DType::F32);
    let drop = Some(Dropout { seed: 5, p: 0.2 });
    let apart = |g: &Tensor, u: &Tensor, a: &Tensor, b: &Tensor| ops::lora_linear(&ops::swiglu(g, u).unwrap(), &lin, a, b, 1.3, drop).unwrap();
    let joined = |g: &Tensor, u: &Tensor, a: &Tensor, b: &Tensor| ops::swiglu_lora_linear(g, u, &lin, a, b, 1.3, drop).unwrap();
    check("gate", &g, |t| joined(t, &u, &a, &b), |t| apart(t, &u, &a, &b));
    check("up", &u, |t| joined(&g, t, &a, &b), |t| apart(&g, t, &a, &b));
    check("lora A", &a, |t| joined(&g, &u, t, &b), |t| apart(&g, &u, t, &b));
    check("lora B", &b, |t| joined(&g, &u, &a, t), |t| apart(&g, &u, &a, t));
}

#[test]
fn the_fast_exp_is_within_a_few_ulp_of_libm_where_f32_has_normal_results() {
    let mut worst = 0f64;
    let mut x = -87.0f32;
    while x < 88.0 {
        let (ours, libm) = (whetstone_engine::fused::exp(x) as f64, (x as f64).exp());
        worst = worst.max((ours - libm).abs() / libm);
        x += 0.0137;
    }
    assert!(worst < 4e-7, "relative error {worst}");
    assert_eq!(whetstone_engine::fused::exp(-200.0), 0.0);
    assert_eq!(whetstone_engine::fused::exp(0.0), 1.0);
}

#[test]
fn row_maximum_and_shifted_exp_sum_match_their_definitions_at_every_length() {
    use whetstone_engine::fused::{exp, exp_shifted_sum, max_of};
    assert_eq!(max_of(&[]), f32::NEG_INFINITY);
    assert_eq!(max_of(&[f32::NEG_INFINITY, f32::NAN, -3.0]), -3.0);
    let mut rng = whetstone_engine::rng::Rng::new(7);
    for len in 0..70 {
        let x: Vec<f32> = (0..len).map(|_| rng.uniform(-30.0, 5.0) as f32).collect();
        let want = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(max_of(&x), want, "max of {len}");
        // Masked scores are −∞ and must come out as zeros.
        let mut y = x.clone();
        if len > 3 {
            y[len / 2] = f32::NEG_INFINITY;
        }
        let shift = max_of(&y).max(0.0);
        let mut e = y.clone();
        let total = exp_shifted_sum(&mut e, shift);
        for (i, (&got, &v)) in e.iter().zip(&y).enumerate() {
            assert_eq!(got.to_bits(), exp(v - shift).to_bits(), "element {i} of {len}");
        }
        let naive: f64 = e.iter().map(|&v| v as f64).sum();
        assert!((total as f64 - naive).abs() <= 1e-6 * naive.max(1e-30), "sum of {len}: {total} vs {naive}");
    }
}

/// Every gradient of `sum(f(q, k, v) * w)`, as bits.
fn grad_bits(xs: &[&Tensor], f: impl Fn(&[Tensor]) -> Tensor) -> Vec<Vec<u32>> {
    let vars: Vec<Var> = xs.iter().map(|x| Var::from_tensor(x).unwrap()).collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&ts);
    let w = rand(y.dims(), 5, y.dtype());
    let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
    let bits = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut out = vec![bits(&y)];
    out.extend(ts.iter().map(|t| bits(g.get(t).unwrap())));
    out
}

#[test]
fn attention_and_lora_dropout_gradients_are_the_same_bits_on_any_thread_count() {
    // Several runs of query tiles per head and more dropout row blocks than partial sums: both
    // backward passes add partial gradients, and must add them in one order only.
    let (b, h, kv, t, d) = (2, 4, 2, 300, 8);
    let q = rand(&[b, t, h, d], 91, DType::F32);
    let k = rand(&[b, t, kv, d], 92, DType::F32);
    let v = rand(&[b, t, kv, d], 93, DType::F32);
    let present = (0..b * t).map(|i| i % t >= 7 * (i / t)).collect();
    let rule = AttnMask::rule(MaskRule { batch: b, queries: t, keys: t, offset: 0, window: Some(200), present: Some(present) }, DType::F32, &Device::Cpu);
    let lin = FrozenLinear::new(rand(&[7, 12], 94, DType::F32), None);
    let x = rand(&[2, 400, 12], 95, DType::F32);
    let (a, bb) = (rand(&[3, 12], 96, DType::F32), rand(&[7, 3], 97, DType::F32));
    let drop = Dropout { seed: 98, p: 0.1 };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let attn = grad_bits(&[&q, &k, &v], |xs| ops::attention(&xs[0], &xs[1], &xs[2], Some(&rule)).unwrap());
            let lora = grad_bits(&[&x, &a, &bb], |xs| ops::lora_linear(&xs[0], &lin, &xs[1], &xs[2], 0.5, Some(drop)).unwrap());
            let lora_frozen_input = grad_bits(&[&a, &bb], |xs| ops::lora_linear(&x, &lin, &xs[0], &xs[1], 0.5, Some(drop)).unwrap());
            (attn, lora, lora_frozen_input)
        })
    };
    let one = run(1);
    assert!(one.0[1].iter().any(|&g| g != 0) && one.1[2].iter().any(|&g| g != 0), "the gradients are not all zero");
    for threads in [2, 3, 7] {
        let other = run(threads);
        assert!(one.0 == other.0, "attention's result or gradients differ between 1 and {threads} threads");
        assert!(one.1 == other.1, "LoRA's result or gradients with dropout differ between 1 and {threads} threads");
        assert!(one.2 == other.2, "LoRA's A and B gradients on a frozen input differ between 1 and {threads} threads");
    }
}
