//! The BLAS path of `blas::matmul` against candle's own product, over the layouts the engine hands it.

use candle_core::{Device, Tensor};
use whetstone_engine::blas;

fn rand(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = whetstone_engine::rng::Rng::new(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn assert_close(ours: &Tensor, reference: &Tensor, what: &str) {
    assert_eq!(ours.dims(), reference.dims(), "{what}: shape");
    let d: f32 = (ours - reference).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
    let scale: f32 = reference.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
    assert!(d <= 1e-5 * scale.max(1.0), "{what}: max difference {d} (scale {scale})");
}

#[test]
fn products_match_candle_for_every_layout() {
    let a = rand(&[70, 33], 1);
    let b = rand(&[33, 45], 2);
    let w = rand(&[45, 33], 3); // [out, in], used transposed as a linear layer does
    let cases: Vec<(&str, Tensor, Tensor)> = vec![
        ("plain", a.clone(), b.clone()),
        ("b transposed", a.clone(), w.t().unwrap()),
        ("a transposed", rand(&[33, 70], 13).t().unwrap(), b.clone()),
        ("rows narrowed", a.narrow(0, 5, 40).unwrap(), b.clone()),
        ("columns narrowed (strided rows)", rand(&[20, 50], 4).narrow(1, 7, 33).unwrap(), b.clone()),
        ("single row", a.narrow(0, 3, 1).unwrap(), b.clone()),
        ("single column", a.clone(), b.narrow(1, 2, 1).unwrap()),
        ("batched", rand(&[2, 3, 40, 16], 5), rand(&[2, 3, 16, 24], 6)),
        ("batched, b transposed", rand(&[2, 3, 40, 16], 7), rand(&[2, 3, 24, 16], 8).t().unwrap()),
        ("batched from a transpose", rand(&[2, 40, 3, 16], 9).transpose(1, 2).unwrap(), rand(&[2, 3, 16, 24], 10)),
        ("large rows, split over threads", rand(&[300, 64], 11), rand(&[64, 96], 12)),
        ("wide, split by columns", rand(&[40, 64], 14), rand(&[64, 301], 15)),
        ("wide, b transposed, split by columns", rand(&[40, 64], 16), rand(&[301, 64], 17).t().unwrap()),
        ("batched and wide", rand(&[3, 40, 16], 18), rand(&[3, 16, 130], 19)),
    ];
    for (what, x, y) in cases {
        let ours = blas::matmul(&x, &y).unwrap();
        let reference = x.contiguous().unwrap().matmul(&y.contiguous().unwrap()).unwrap();
        assert_close(&ours, &reference, what);
    }
}

#[test]
fn shapes_that_do_not_fit_are_refused_like_candle() {
    let a = rand(&[4, 5], 1);
    let b = rand(&[6, 3], 2);
    assert!(blas::matmul(&a, &b).is_err());
}

/// scripts/setup.sh installs Debian's OpenBLAS; the fast path must be the one in use, or the tests
/// above compare candle with itself. `WHETSTONE_BLAS` chooses another on purpose.
#[cfg(target_os = "linux")]
#[test]
fn openblas_is_used() {
    if std::env::var("WHETSTONE_BLAS").is_err() {
        assert!(blas::backend().starts_with("OpenBLAS"), "backend: {}; run scripts/setup.sh to install OpenBLAS", blas::backend());
    }
}
