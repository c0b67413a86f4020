//! The Hugging Face cache layout (`models--org--name/{blobs,refs,snapshots}`), the one Python's
//! `huggingface_hub` and Rust's `hf-hub` use, so a model pulled here is found by other HF tools and
//! the other way round. Partial downloads are `blobs/<etag>.incomplete`, as Python writes them, and
//! either tool resumes the other's.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfCache {
    root: PathBuf,
}

impl HfCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`, as `huggingface_hub`
    /// resolves it.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = var("HF_HUB_CACHE") {
            return Self::new(dir);
        }
        Self::new(hf_home().join("hub"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.join(format!("models--{}", repo.replace('/', "--")))
    }

    pub fn blob_path(&self, repo: &str, etag: &str) -> PathBuf {
        self.repo_dir(repo).join("blobs").join(etag)
    }

    pub fn incomplete_path(&self, repo: &str, etag: &str) -> PathBuf {
        self.repo_dir(repo).join("blobs").join(format!("{etag}.incomplete"))
    }

    pub fn snapshot_dir(&self, repo: &str, commit: &str) -> PathBuf {
        self.repo_dir(repo).join("snapshots").join(commit)
    }

    /// The commit a branch or tag pointed at when it was last pulled.
    pub fn read_ref(&self, repo: &str, revision: &str) -> Option<String> {
        let path = self.repo_dir(repo).join("refs").join(revision);
        std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    }

    pub fn write_ref(&self, repo: &str, revision: &str, commit: &str) -> Result<()> {
        if revision == commit {
            return Ok(());
        }
        let path = self.repo_dir(repo).join("refs").join(revision);
        write_atomic(&path, commit.as_bytes())
    }

    /// The snapshot commit for `revision` without asking the hub: the revision itself when it is a
    /// commit already in the cache, else what its ref file says.
    pub fn resolve_offline(&self, repo: &str, revision: &str) -> Option<String> {
        if is_commit(revision) && self.snapshot_dir(repo, revision).is_dir() {
            return Some(revision.to_string());
        }
        self.read_ref(repo, revision).filter(|c| self.snapshot_dir(repo, c).is_dir())
    }

    /// Points `snapshots/<commit>/<file>` at `blobs/<etag>` (a relative symlink, as the Python library
    /// makes; a copy where symlinks are not allowed).
    pub fn link(&self, repo: &str, commit: &str, file: &str, etag: &str) -> Result<PathBuf> {
        let dest = self.snapshot_dir(repo, commit).join(file);
        let parent = dest.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| Error::io("create", &parent, e))?;
        match std::fs::symlink_metadata(&dest) {
            Ok(_) => std::fs::remove_file(&dest).map_err(|e| Error::io("replace", &dest, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("inspect", &dest, e)),
        }
        let blob = self.blob_path(repo, etag);
        #[cfg(unix)]
        {
            let depth = file.matches('/').count();
            let mut target = PathBuf::from("../".repeat(depth + 2));
            target.push("blobs");
            target.push(etag);
            std::os::unix::fs::symlink(&target, &dest).map_err(|e| Error::io("link", &dest, e))?;
        }
        #[cfg(not(unix))]
        std::fs::copy(&blob, &dest).map_err(|e| Error::io("copy the download to", &dest, e))?;
        let _ = blob;
        Ok(dest)
    }
}

/// `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub fn hf_home() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("HF_HOME")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("huggingface")))
        .or_else(|| dirs::home_dir().map(|d| d.join(".cache").join("huggingface")))
        .unwrap_or_else(|| PathBuf::from(".cache/huggingface"))
}

/// A full 40-hex-digit git commit id.
pub fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    whetstone_files::write_atomic(path, bytes).map_err(|e| Error::io("write", path, e))
}
