//! f32 matrix products on the CPU through a system BLAS (OpenBLAS) when one is installed.
//!
//! Training time on the CPU is almost all matrix products. candle's built-in kernels (the `gemm`
//! crate, built without its AVX-512 paths) reach about 40–75 GFLOP/s on two cores of an AVX-512
//! machine; OpenBLAS's kernels reach about 95 GFLOP/s per core there. The library is opened at run
//! time, so the program builds and runs without it and falls back to candle's own product.
//!
//! `WHETSTONE_BLAS=off` turns it off; `WHETSTONE_BLAS=/path/to/libopenblas.so` picks a file.
//! OpenBLAS is asked for one thread per call: the calls are split over rayon's pool (the one candle
//! uses), so no third pool of threads competes for the cores.

use candle_core::{CpuStorage, Device, Layout, Result, Storage, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::sync::OnceLock;

type Sgemm = unsafe extern "C" fn(
    order: i32,
    trans_a: i32,
    trans_b: i32,
    m: i32,
    n: i32,
    k: i32,
    alpha: f32,
    a: *const f32,
    lda: i32,
    b: *const f32,
    ldb: i32,
    beta: f32,
    c: *mut f32,
    ldc: i32,
);

const ROW_MAJOR: i32 = 101;
const NO_TRANS: i32 = 111;
const TRANS: i32 = 112;

struct Blas {
    // Kept open for as long as `sgemm` may be called.
    _lib: libloading::Library,
    sgemm: Sgemm,
    name: String,
}

static BLAS: OnceLock<Option<Blas>> = OnceLock::new();

#[cfg(target_os = "linux")]
const CANDIDATES: &[&str] = &["libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0"];
#[cfg(target_os = "windows")]
const CANDIDATES: &[&str] = &["libopenblas.dll", "openblas.dll"];
#[cfg(target_os = "macos")]
const CANDIDATES: &[&str] = &["libopenblas.dylib", "/opt/homebrew/opt/openblas/lib/libopenblas.dylib"];
#[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "macos")))]
const CANDIDATES: &[&str] = &[];

fn open() -> Option<Blas> {
    let setting = std::env::var("WHETSTONE_BLAS").unwrap_or_default();
    if setting == "off" || setting == "0" {
        return None;
    }
    let names: Vec<&str> = if setting.is_empty() { CANDIDATES.to_vec() } else { vec![setting.as_str()] };
    for name in names {
        // SAFETY: loading OpenBLAS runs only its own initialisers; the symbols below are looked up
        // with the signatures of its C interface (cblas.h).
        let Ok(lib) = (unsafe { libloading::Library::new(name) }) else { continue };
        let sgemm = match unsafe { lib.get::<Sgemm>(b"cblas_sgemm\0") } {
            Ok(f) => *f,
            Err(_) => continue,
        };
        if let Ok(set_threads) = unsafe { lib.get::<unsafe extern "C" fn(i32)>(b"openblas_set_num_threads\0") } {
            unsafe { set_threads(1) };
        }
        return Some(Blas { sgemm, name: name.to_string(), _lib: lib });
    }
    None
}

fn blas() -> Option<&'static Blas> {
    BLAS.get_or_init(open).as_ref()
}

/// Which library computes f32 matrix products on the CPU, for reports and benchmarks.
pub fn backend() -> String {
    match blas() {
        Some(b) => format!("OpenBLAS ({})", b.name),
        None => "candle (built-in gemm)".to_string(),
    }
}

/// How one operand's matrices lie in memory.
#[derive(Clone, Copy)]
struct Operand {
    trans: i32,
    ld: usize,
}

/// Row-major `[rows, cols]` with unit column stride, or its transpose (unit row stride).
fn operand(layout: &Layout) -> Option<Operand> {
    let dims = layout.dims();
    let strides = layout.stride();
    let r = dims.len();
    let (rows, cols) = (dims[r - 2], dims[r - 1]);
    let (sr, sc) = (strides[r - 2], strides[r - 1]);
    if (sc == 1 || cols == 1) && sr >= cols.max(1) {
        Some(Operand { trans: NO_TRANS, ld: sr.max(1) })
    } else if (sr == 1 || rows == 1) && sc >= rows.max(1) {
        Some(Operand { trans: TRANS, ld: sc.max(1) })
    } else {
        None
    }
}

/// Offsets of each matrix of a batched operand, from its leading dimensions' strides.
fn batch_offsets(layout: &Layout) -> Vec<usize> {
    let dims = layout.dims();
    let strides = layout.stride();
    let lead = dims.len() - 2;
    let mut offs = vec![layout.start_offset()];
    for d in 0..lead {
        let mut next = Vec::with_capacity(offs.len() * dims[d]);
        for o in &offs {
            for i in 0..dims[d] {
                next.push(o + i * strides[d]);
            }
        }
        offs = next;
    }
    offs
}

fn cpu_f32(storage: &Storage) -> Option<&[f32]> {
    match storage {
        Storage::Cpu(CpuStorage::F32(v)) => Some(v.as_slice()),
        _ => None,
    }
}

/// `a · b` for f32 tensors on the CPU with equal leading (batch) dimensions: through OpenBLAS when it
/// is loaded and both operands are plain or transposed matrices, else candle's `matmul`.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    match blas() {
        Some(lib) if usable(a, b) => blas_matmul(lib, a, b),
        _ => candle_matmul(a, b),
    }
}

/// candle's product, with contiguous copies for the strided batches its kernels refuse.
fn candle_matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    match a.matmul(b) {
        Err(_) if !(a.is_contiguous() && b.is_contiguous()) => a.contiguous()?.matmul(&b.contiguous()?),
        r => r,
    }
}

fn usable(a: &Tensor, b: &Tensor) -> bool {
    let (da, db) = (a.dims(), b.dims());
    matches!(a.device(), Device::Cpu)
        && a.dtype() == candle_core::DType::F32
        && b.dtype() == candle_core::DType::F32
        && da.len() >= 2
        && da.len() == db.len()
        && da[..da.len() - 2] == db[..db.len() - 2]
        && da[da.len() - 1] == db[db.len() - 2]
        && da.iter().chain(db.iter()).all(|&d| d > 0 && d <= i32::MAX as usize)
}

fn blas_matmul(lib: &Blas, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    match blas_matmul_vec(lib, a, b) {
        Some((out, shape)) => Tensor::from_vec(out, shape, &Device::Cpu),
        None => candle_matmul(a, b),
    }
}

/// `a · b` as a plain buffer and its shape, for kernels that go on working on the result in place.
pub(crate) fn matmul_vec(a: &Tensor, b: &Tensor) -> Result<(Vec<f32>, Vec<usize>)> {
    if let Some(lib) = blas().filter(|_| usable(a, b)) {
        if let Some(r) = blas_matmul_vec(lib, a, b) {
            return Ok(r);
        }
    }
    let c = candle_matmul(a, b)?.to_dtype(candle_core::DType::F32)?;
    let shape = c.dims().to_vec();
    Ok((c.flatten_all()?.to_vec1()?, shape))
}

fn blas_matmul_vec(lib: &Blas, a: &Tensor, b: &Tensor) -> Option<(Vec<f32>, Vec<usize>)> {
    let r = a.rank();
    let (batches, m, n) = (a.dims()[..r - 2].iter().product::<usize>(), a.dims()[r - 2], b.dims()[r - 1]);
    let len = batches * m * n;
    // With beta = 0 sgemm stores every element of C without reading it, so the buffer is not
    // zero-filled first.
    let mut out: Vec<MaybeUninit<f32>> = Vec::with_capacity(len);
    // SAFETY: MaybeUninit elements need no initialisation.
    unsafe { out.set_len(len) };
    sgemm_into(lib, a, b, 1.0, 0.0, &mut out)?;
    let mut out = std::mem::ManuallyDrop::new(out);
    // SAFETY: every element was written by sgemm above; MaybeUninit<f32> has f32's layout.
    let out = unsafe { Vec::from_raw_parts(out.as_mut_ptr().cast::<f32>(), len, out.capacity()) };
    let mut shape = a.dims().to_vec();
    shape[r - 1] = n;
    Some((out, shape))
}

/// `c ← alpha · a · b + c` for f32 CPU tensors, `c` laid out as the product (`[…, m, n]`, contiguous).
/// Accumulating in the product saves the separate scale and add passes over `c`.
pub(crate) fn matmul_acc(a: &Tensor, b: &Tensor, alpha: f32, c: &mut [f32]) -> Result<()> {
    if let Some(lib) = blas().filter(|_| usable(a, b)) {
        if sgemm_into(lib, a, b, alpha, 1.0, c).is_some() {
            return Ok(());
        }
    }
    let (p, _) = matmul_vec(a, b)?;
    if p.len() != c.len() {
        candle_core::bail!("matmul_acc: product of {} elements into {}", p.len(), c.len());
    }
    crate::fused::axpy_in_place(c, &p, alpha);
    Ok(())
}

/// `c ← alpha · a · b + beta · c` through sgemm, over the batch and split in row blocks across rayon's
/// threads; `None` when an operand is neither a plain nor a transposed matrix. `T` is `f32` or
/// `MaybeUninit<f32>` (with `beta = 0`, which sgemm never reads).
fn sgemm_into<T: Send>(lib: &Blas, a: &Tensor, b: &Tensor, alpha: f32, beta: f32, out: &mut [T]) -> Option<()> {
    debug_assert_eq!(std::mem::size_of::<T>(), 4);
    let (sa, la) = a.storage_and_layout();
    let (sb, lb) = b.storage_and_layout();
    let (Some(oa), Some(ob), Some(va), Some(vb)) = (operand(la), operand(lb), cpu_f32(&sa), cpu_f32(&sb)) else {
        return None;
    };
    let r = a.rank();
    let (m, k, n) = (a.dims()[r - 2], a.dims()[r - 1], b.dims()[r - 1]);
    let (offs_a, offs_b) = (batch_offsets(la), batch_offsets(lb));
    let batches = offs_a.len();
    if out.len() != batches * m * n {
        return None;
    }
    // One call multiplies rows `rows` by columns `cols` of one matrix of the batch; `c` points at
    // that block's first result, in rows `n` apart.
    let call = |batch: usize, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>, c: *mut f32| {
        let a_off = offs_a[batch] + if oa.trans == NO_TRANS { rows.start * oa.ld } else { rows.start };
        let b_off = offs_b[batch] + if ob.trans == NO_TRANS { cols.start } else { cols.start * ob.ld };
        // SAFETY: the pointers and leading dimensions come from candle layouts, which only describe
        // elements inside their storage, and `operand` checked each matrix is plain or transposed;
        // `c` has room for the block's results, `n` apart.
        unsafe {
            (lib.sgemm)(
                ROW_MAJOR,
                oa.trans,
                ob.trans,
                rows.len() as i32,
                cols.len() as i32,
                k as i32,
                alpha,
                va.as_ptr().add(a_off),
                oa.ld as i32,
                vb.as_ptr().add(b_off),
                ob.ld as i32,
                beta,
                c,
                n as i32,
            )
        }
    };
    // sgemm packs all of `b` in every call and all of `a` once per call, so a product split in row
    // blocks packs `b` once per block. The split runs along the dimension of the larger operand:
    // rows when `a` is the larger (`m > n`), columns when `b` is, as in the LM head's 49k columns.
    // The blocks make a multiple of the thread count over the batch, each at least 32 wide, for
    // the kernels' sake.
    let threads = rayon::current_num_threads().max(1);
    let by_rows = m >= n;
    let wide = if by_rows { m } else { n };
    let blocks = (threads / gcd(batches, threads)).min(wide / 32).max(1);
    let block = wide.div_ceil(blocks);
    let base = SendPtr(out.as_mut_ptr().cast::<f32>());
    (0..batches * blocks).into_par_iter().for_each(|task| {
        let (batch, j) = (task / blocks, task % blocks);
        let span = j * block..((j + 1) * block).min(wide);
        let (rows, cols) = if by_rows { (span, 0..n) } else { (0..m, span) };
        // SAFETY: the tasks' blocks of the batch's `m × n` result do not overlap and lie inside `out`.
        let c = unsafe { base.get().add(batch * m * n + rows.start * n + cols.start) };
        call(batch, rows, cols, c);
    });
    Some(())
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// A pointer into a result buffer whose disjoint blocks rayon's tasks write.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);

// SAFETY: each task writes its own block only (see `sgemm_into`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// One operand of [`gemm_slices`]: a row-major matrix with leading dimension `ld`, read transposed
/// when `trans`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub trans: bool,
}

impl Mat<'_> {
    #[inline]
    fn at(&self, i: usize, j: usize) -> f32 {
        if self.trans { self.data[j * self.ld + i] } else { self.data[i * self.ld + j] }
    }
}

/// `c ← alpha · op(a) · op(b) + beta · c` on the calling thread, `op(a)` being `m × k`, `op(b)`
/// `k × n` and `c` a contiguous `m × n`. For the small products of one row block inside a kernel
/// that is itself split over rayon's threads; without OpenBLAS a plain loop computes them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_slices(m: usize, n: usize, k: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: &mut [f32]) {
    let c = &mut c[..m * n];
    if m == 0 || n == 0 {
        return;
    }
    if let Some(lib) = blas().filter(|_| m.max(n).max(k) <= i32::MAX as usize) {
        let t = |m: &Mat| if m.trans { TRANS } else { NO_TRANS };
        // Checked in every build: sgemm would read past a short slice where the loop below panics.
        assert!(k == 0 || a.data.len() >= if a.trans { (k - 1) * a.ld + m } else { (m - 1) * a.ld + k }, "gemm_slices: a too short");
        assert!(k == 0 || b.data.len() >= if b.trans { (n - 1) * b.ld + k } else { (k - 1) * b.ld + n }, "gemm_slices: b too short");
        // SAFETY: the asserts above and `c`'s slicing show every element sgemm touches lies inside
        // the three slices.
        unsafe {
            (lib.sgemm)(
                ROW_MAJOR,
                t(&a),
                t(&b),
                m as i32,
                n as i32,
                k as i32,
                alpha,
                a.data.as_ptr(),
                a.ld.max(1) as i32,
                b.data.as_ptr(),
                b.ld.max(1) as i32,
                beta,
                c.as_mut_ptr(),
                n as i32,
            )
        };
        return;
    }
    for i in 0..m {
        let row = &mut c[i * n..(i + 1) * n];
        if beta == 0.0 {
            row.fill(0.0);
        } else if beta != 1.0 {
            row.iter_mut().for_each(|v| *v *= beta);
        }
        for p in 0..k {
            let s = alpha * a.at(i, p);
            for (j, v) in row.iter_mut().enumerate() {
                *v += s * b.at(p, j);
            }
        }
    }
}
