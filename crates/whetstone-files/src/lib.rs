//! How Whetstone writes files, for every crate: into a hidden temporary file beside the target,
//! flushed and synced, renamed over the target, and the folder synced, so that a reader (or the
//! next start after a crash or power loss) sees either the old file or the whole new one.
//!
//! Errors are plain `std::io::Error`s; callers add the path and what they were doing to their own
//! typed error.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically; creates the parent folder when it is missing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Runs `fill` on a buffered temporary file beside `path`, then syncs it, renames it into place and
/// syncs the folder. On any failure the temporary file is removed and `path` is left as it was.
pub fn write_atomic_with<T>(path: &Path, fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<T>) -> std::io::Result<T> {
    let dir = parent(path);
    std::fs::create_dir_all(dir)?;
    let tmp = temp_path(path);
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        let value = fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` to `path` as [`write_atomic`] does, but only if nothing is at `path`: the
/// finished temporary file is hard-linked into place, which fails with `AlreadyExists` rather than
/// replace a file that appeared in the meantime. Where the file system has no hard links, an
/// existence check before the rename stands in for it.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent(path);
    std::fs::create_dir_all(dir)?;
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists));
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => std::fs::remove_file(&tmp)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(e),
            Err(_) => {
                if std::fs::symlink_metadata(path).is_ok() {
                    return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists));
                }
                std::fs::rename(&tmp, path)?;
            }
        }
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes a file and syncs it, without the rename: for files inside a temporary folder that is itself
/// moved into place whole with [`replace_dir`].
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A fresh hidden folder beside `target`, to fill before [`replace_dir`] puts it in place.
pub fn temp_dir_beside(target: &Path) -> std::io::Result<PathBuf> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let parent = parent(target);
    for i in 0..1000u32 {
        let p = parent.join(format!(".{name}.{}-{i}{TEMP_SUFFIX}", std::process::id()));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!("could not create a temporary folder in {}", parent.display())))
}

/// Puts the folder `tmp` where `target` is. An existing target is moved aside first and removed only
/// after the new one is in place, so a crash leaves the old folder or the new one, never a
/// half-written one.
pub fn replace_dir(tmp: &Path, target: &Path) -> std::io::Result<()> {
    sync_dir(tmp)?;
    if target.exists() {
        let old = tmp.with_extension("old");
        std::fs::rename(target, &old)?;
        std::fs::rename(tmp, target)?;
        std::fs::remove_dir_all(&old)?;
    } else {
        std::fs::rename(tmp, target)?;
    }
    sync_dir(parent(target))
}

/// Makes a rename or a new entry in `dir` durable. Windows has no directory handles to sync; its
/// renames are journaled by NTFS.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The temporary name used for `path` while it is written: hidden, unique to this process and call
/// site, and recognisable by [`is_temp_name`] so leftovers of a crash can be cleaned.
pub fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent(path).join(format!(".{name}.{}-{n}{TEMP_SUFFIX}", std::process::id()))
}

const TEMP_SUFFIX: &str = ".tmp";

/// Whether a file name is one [`temp_path`] makes.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Whether a folder is missing or holds nothing, so that writing into it cannot mix old files with
/// new ones or replace something the user had.
pub fn is_empty_dir(dir: &Path) -> std::io::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}
