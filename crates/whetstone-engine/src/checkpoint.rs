//! Checkpoints: everything a run needs to go on exactly where it was, on disk in a form that a crash
//! at any instant cannot make look valid when it is not.
//!
//! A checkpoint is a folder `checkpoints/step-<N>/` holding the adapter and the AdamW moments (raw
//! f32, so a resumed run computes the same bits), `state.json` (step, RNG states, data order, early
//! stopping bookkeeping) and `metrics.jsonl` up to step N. It is written into a hidden temporary
//! folder, every file is flushed to disk, `manifest.json` (SHA-256 and size of each file) is written
//! last, and only then is the folder renamed into place. Loading checks the manifest and skips any
//! folder that fails it.

use crate::error::{Error, Result};
use crate::lora::{tempdir_in, write_file_synced, write_safetensors, Adapter};
use crate::optim::AdamW;
use crate::policy::{BatchShape, Checkpointing, EarlyStopping, Guard, Warned};
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";
const STATE: &str = "state.json";
const ADAPTER: &str = "adapter.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const METRICS: &str = "metrics.jsonl";
const FILES: [&str; 4] = [STATE, ADAPTER, OPTIMIZER, METRICS];

/// Where the data stream stands: the current epoch's permutation and position, and the generator
/// that shuffles the next epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderState {
    pub idx: Vec<usize>,
    pub pos: usize,
    pub epoch: u64,
    pub rng: Rng,
}

impl OrderState {
    pub fn new(n: usize, seed: u64) -> Self {
        let mut o = OrderState { idx: (0..n).collect(), pos: 0, epoch: 0, rng: Rng::new(seed ^ 0x5eed_da7a) };
        o.rng.shuffle(&mut o.idx);
        o
    }

    /// The next example's index, reshuffling at the start of each epoch after the first.
    pub fn next_index(&mut self) -> usize {
        if self.pos == self.idx.len() {
            self.rng.shuffle(&mut self.idx);
            self.pos = 0;
            self.epoch += 1;
        }
        self.pos += 1;
        self.idx[self.pos - 1]
    }
}

/// The best evaluation so far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Best {
    pub step: u64,
    pub eval_loss: f64,
}

/// Everything of a run's progress that is not a tensor. The policies' parts are flattened, so
/// `state.json` keeps one flat object whatever type holds each field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Steps of the loop done (skipped ones included).
    pub step: u64,
    /// Updates AdamW has made (steps minus skipped ones); drives its bias correction.
    pub optimizer_step: u64,
    /// The settings and data size the run was started with, to refuse resuming a different run.
    pub fingerprint: String,
    pub dropout_rng: Rng,
    pub order: OrderState,
    #[serde(flatten)]
    pub batch: BatchShape,
    #[serde(flatten)]
    pub early_stopping: EarlyStopping,
    #[serde(flatten)]
    pub guard: Guard,
    /// Training time before this process started.
    pub elapsed_s: f64,
    pub warned: Warned,
    pub first_loss: Option<f64>,
    pub last_loss: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestFile {
    name: String,
    bytes: u64,
    sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    step: u64,
    files: Vec<ManifestFile>,
}

/// The folder of the checkpoint at `step`.
pub fn step_dir(root: &Path, step: u64) -> PathBuf {
    root.join(format!("step-{step}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn fsync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Saves a checkpoint of `state` at `root/step-<state.step>/`; `between_files` runs after each file
/// (tests use it to widen the window in which a crash lands inside a save).
pub fn save(
    root: &Path,
    state: &RunState,
    adapter: &Adapter,
    optimizer: &AdamW,
    metrics: &[u8],
    between_files: &mut dyn FnMut(),
) -> Result<PathBuf> {
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let target = step_dir(root, state.step);
    let tmp = tempdir_in(&target)?;
    let state_json = serde_json::to_vec_pretty(state).map_err(|e| Error::Internal(format!("encoding the checkpoint state: {e}")))?;
    write_file_synced(&tmp.join(STATE), &state_json)?;
    between_files();
    write_safetensors(&tmp.join(ADAPTER), &adapter_tensors(adapter)?)?;
    between_files();
    let names: Vec<String> = adapter.named_vars().into_iter().map(|(k, _)| k).collect();
    let (m, v) = optimizer.moments();
    let mut opt: Vec<(String, Tensor)> = Vec::with_capacity(2 * names.len() + 1);
    for (i, k) in names.iter().enumerate() {
        opt.push((format!("m.{k}"), m[i].to_dtype(DType::F32)?.to_device(&Device::Cpu)?));
        opt.push((format!("v.{k}"), v[i].to_dtype(DType::F32)?.to_device(&Device::Cpu)?));
    }
    write_safetensors(&tmp.join(OPTIMIZER), &opt)?;
    between_files();
    write_file_synced(&tmp.join(METRICS), metrics)?;
    between_files();
    let mut files = Vec::new();
    for name in FILES {
        let bytes = std::fs::read(tmp.join(name)).map_err(|e| Error::io(tmp.join(name), e))?;
        files.push(ManifestFile { name: name.into(), bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) });
    }
    let manifest = Manifest { format: 1, step: state.step, files };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(format!("encoding the checkpoint manifest: {e}")))?;
    write_file_synced(&tmp.join(MANIFEST), &text)?;
    fsync_dir(&tmp);
    crate::lora::replace_dir(&tmp, &target)?;
    Ok(target)
}

fn adapter_tensors(adapter: &Adapter) -> Result<Vec<(String, Tensor)>> {
    adapter
        .named_vars()
        .into_iter()
        .map(|(k, v)| Ok((k, v.as_tensor().to_dtype(DType::F32)?.to_device(&Device::Cpu)?)))
        .collect()
}

/// A checkpoint that passed its manifest check, with its files in memory.
#[derive(Debug)]
pub struct Loaded {
    pub dir: PathBuf,
    pub state: RunState,
    adapter: Vec<u8>,
    optimizer: Vec<u8>,
    pub metrics: Vec<u8>,
}

/// Reads `dir` and checks every file against the manifest; any mismatch is an error naming it.
pub fn verify(dir: &Path) -> Result<Loaded> {
    let bad = |m: String| Error::Checkpoint { path: dir.to_path_buf(), message: m };
    let mpath = dir.join(MANIFEST);
    let text = std::fs::read(&mpath).map_err(|_| bad("no manifest (the save did not finish)".into()))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| bad(format!("unreadable manifest: {e}")))?;
    let mut contents: HashMap<&str, Vec<u8>> = HashMap::new();
    for name in FILES {
        let entry = manifest.files.iter().find(|f| f.name == name).ok_or_else(|| bad(format!("the manifest lists no {name}")))?;
        let bytes = std::fs::read(dir.join(name)).map_err(|e| bad(format!("{name}: {e}")))?;
        if bytes.len() as u64 != entry.bytes || sha256_hex(&bytes) != entry.sha256 {
            return Err(bad(format!("{name} does not match its checksum")));
        }
        contents.insert(name, bytes);
    }
    let state: RunState = serde_json::from_slice(&contents[STATE]).map_err(|e| bad(format!("state.json: {e}")))?;
    if state.step != manifest.step {
        return Err(bad("state and manifest disagree on the step".into()));
    }
    Ok(Loaded {
        dir: dir.to_path_buf(),
        state,
        adapter: contents.remove(ADAPTER).unwrap_or_default(),
        optimizer: contents.remove(OPTIMIZER).unwrap_or_default(),
        metrics: contents.remove(METRICS).unwrap_or_default(),
    })
}

/// Steps of the checkpoint folders under `root`, newest first. Hidden temporary folders are not
/// listed.
pub fn list(root: &Path) -> Vec<u64> {
    let mut steps: Vec<u64> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_prefix("step-")).and_then(|n| n.parse().ok()))
        .collect();
    steps.sort_unstable_by(|a, b| b.cmp(a));
    steps
}

/// The newest checkpoint that passes its check, and the ones skipped on the way with the reason.
pub fn latest_good(root: &Path) -> (Option<Loaded>, Vec<(PathBuf, String)>) {
    let mut skipped = Vec::new();
    for step in list(root) {
        let dir = step_dir(root, step);
        match verify(&dir) {
            Ok(l) => return (Some(l), skipped),
            Err(e) => skipped.push((dir, e.to_string())),
        }
    }
    (None, skipped)
}

/// Removes what interrupted saves and deletions left behind (hidden temporary folders).
pub fn remove_leftovers(root: &Path) {
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Deletes a checkpoint folder; it is renamed to a hidden name first, so a crash halfway leaves
/// nothing that looks like a checkpoint.
pub fn remove(root: &Path, step: u64) -> Result<()> {
    let dir = step_dir(root, step);
    let trash = root.join(format!(".removed-step-{step}-{}", std::process::id()));
    std::fs::rename(&dir, &trash).map_err(|e| Error::io(&dir, e))?;
    std::fs::remove_dir_all(&trash).map_err(|e| Error::io(&trash, e))
}

/// Removes the checkpoints `policy` does not keep, given the best one's step.
pub fn prune(root: &Path, policy: &Checkpointing, best: Option<u64>) -> Result<()> {
    for step in policy.to_remove(&list(root), best) {
        remove(root, step)?;
    }
    Ok(())
}

fn read_tensors(bytes: &[u8], what: &Path) -> Result<HashMap<String, Tensor>> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Checkpoint { path: what.to_path_buf(), message: e.to_string() })?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(Error::Checkpoint { path: what.to_path_buf(), message: format!("{name} is not f32") });
        }
        let v: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        out.insert(name, Tensor::from_vec(v, view.shape().to_vec(), &Device::Cpu)?);
    }
    Ok(out)
}

impl Loaded {
    /// Puts the saved adapter values into `adapter`.
    pub fn restore_adapter(&self, adapter: &Adapter) -> Result<()> {
        let path = self.dir.join(ADAPTER);
        let mut t = read_tensors(&self.adapter, &path)?;
        for (k, v) in adapter.named_vars() {
            let saved = t.remove(&k).ok_or_else(|| Error::Checkpoint { path: path.clone(), message: format!("missing tensor {k}") })?;
            if saved.dims() != v.dims() {
                return Err(Error::TensorShape { name: k, expected: v.dims().to_vec(), actual: saved.dims().to_vec() });
            }
            v.set(&saved.to_device(v.device())?)?;
        }
        Ok(())
    }

    /// Puts the saved moments and step count into `optimizer` (built over `adapter`'s tensors).
    pub fn restore_optimizer(&self, adapter: &Adapter, optimizer: &mut AdamW) -> Result<()> {
        let path = self.dir.join(OPTIMIZER);
        let mut t = read_tensors(&self.optimizer, &path)?;
        let mut take = |k: String, like: &Tensor| -> Result<Tensor> {
            let saved = t.remove(&k).ok_or_else(|| Error::Checkpoint { path: path.clone(), message: format!("missing tensor {k}") })?;
            if saved.dims() != like.dims() {
                return Err(Error::TensorShape { name: k, expected: like.dims().to_vec(), actual: saved.dims().to_vec() });
            }
            Ok(saved.to_device(like.device())?)
        };
        let (mut m, mut v) = (Vec::new(), Vec::new());
        for (k, var) in adapter.named_vars() {
            m.push(take(format!("m.{k}"), var.as_tensor())?);
            v.push(take(format!("v.{k}"), var.as_tensor())?);
        }
        optimizer.set_moments(m, v, self.state.optimizer_step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // state.json as written before the policies had types of their own; checkpoints of that shape
    // must still resume.
    const FLAT_STATE: &str = r#"{
  "step": 12,
  "optimizer_step": 11,
  "fingerprint": "f",
  "dropout_rng": {"s": [1, 2, 3, 18446744073709551615]},
  "order": {"idx": [2, 0, 1], "pos": 1, "epoch": 3, "rng": {"s": [5, 6, 7, 8]}},
  "micro_batch": 2,
  "grad_accum": 4,
  "best": {"step": 10, "eval_loss": 0.1234567890123},
  "evals_without_improvement": 1,
  "bad_steps_in_row": 0,
  "evals": [[5, 0.5], [10, 0.1234567890123]],
  "train_since_eval": [3.5, 2],
  "train_at_evals": [null, 1.5],
  "elapsed_s": 3.25,
  "warned": ["diverging"],
  "first_loss": 2.5,
  "last_loss": 1.0000000000000002,
  "min_loss": 0.75
}"#;

    #[test]
    fn a_flat_state_reads_into_the_policies_and_writes_back_the_same() {
        let s: RunState = serde_json::from_str(FLAT_STATE).unwrap();
        assert_eq!(s.batch, BatchShape { micro_batch: 2, grad_accum: 4 });
        assert_eq!(s.early_stopping.best, Some(Best { step: 10, eval_loss: 0.1234567890123 }));
        assert_eq!(s.early_stopping.evals_without_improvement, 1);
        assert_eq!(s.guard.evals, [(5, 0.5), (10, 0.1234567890123)]);
        assert_eq!(s.guard.min_loss, Some(0.75));
        assert_eq!(s.guard.train_since_eval, (3.5, 2));
        assert_eq!(s.guard.train_at_evals, [None, Some(1.5)]);
        assert_eq!(s.last_loss, Some(1.0000000000000002));
        let mut w = s.warned.clone();
        assert!(w.once("diverging", crate::policy::Warning { code: "diverging", message: String::new() }).is_none());
        let written: serde_json::Value = serde_json::to_value(&s).unwrap();
        let flat: serde_json::Value = serde_json::from_str(FLAT_STATE).unwrap();
        assert_eq!(written, flat, "the same keys and values, nothing nested");
        let again: RunState = serde_json::from_slice(&serde_json::to_vec_pretty(&s).unwrap()).unwrap();
        assert_eq!(again, s);
    }
}
