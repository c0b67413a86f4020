//! Which folders the API may read and write for callers that should not reach the whole disk
//! (the HTTP server, the app window): the home folder plus the folders the user allowed.
//!
//! A path is judged by where it really leads: canonicalisation resolves `..` and symbolic links
//! before the comparison, so neither a `..` nor a link inside an allowed folder can reach outside
//! it. The check and the later use are separate system calls; someone who can already write
//! inside an allowed folder can swap a link in between, so this guards against requests, not
//! against other programs on the machine.

use crate::error::{Error, Result};
use crate::Api;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use whetstone_store::AllowedFolder;

/// What the caller is about to do with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The path must exist.
    Read,
    /// The path may not exist yet (an output file or folder); its existing part must.
    Write,
}

impl Api {
    /// The folders the user allowed, besides the home folder, which is always allowed.
    pub fn allowed_folders(&self) -> Result<Vec<AllowedFolder>> {
        Ok(self.store().list_allowed_folders()?)
    }

    /// Allows `path`, an existing folder, stored in its canonical form.
    pub fn allow_folder(&self, path: &Path) -> Result<AllowedFolder> {
        let canonical = std::fs::canonicalize(path)
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| {
                Error::InvalidInput(format!("{} is not an existing folder", path.display()))
            })?;
        Ok(self.store().add_allowed_folder(&path_text(&canonical)?)?)
    }

    /// Opens `path` (a folder Whetstone may read) in the system's file manager; returns the folder opened.
    pub fn open_folder(&self, path: &Path) -> Result<String> {
        let path = self.confine(path, Access::Read)?;
        if !path.is_dir() {
            return Err(Error::InvalidInput(format!("{} is not a folder", path.display())));
        }
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else if cfg!(windows) {
            "explorer"
        } else {
            "xdg-open"
        };
        std::process::Command::new(opener)
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|source| Error::Io { action: "open a file manager on", path: path.clone(), source })?;
        Ok(path.display().to_string())
    }

    /// Takes `path` off the list; it may have been deleted since it was allowed.
    pub fn forget_folder(&self, path: &Path) -> Result<AllowedFolder> {
        let canonical = std::fs::canonicalize(path).ok();
        if canonical.is_some() && canonical == self.canonical_home().ok() {
            return Err(Error::InvalidInput(format!(
                "{} is Whetstone's home folder, which is always allowed",
                path.display()
            )));
        }
        let store = self.store();
        for candidate in canonical.iter().map(PathBuf::as_path).chain([path]) {
            if let Some(text) = candidate.to_str() {
                if let Some(removed) = store.remove_allowed_folder(text)? {
                    return Ok(removed);
                }
            }
        }
        let known = store
            .list_allowed_folders()?
            .into_iter()
            .map(|f| f.path)
            .collect::<Vec<_>>();
        Err(Error::NotFoundNamed {
            what: "allowed folder",
            name: path.display().to_string(),
            known: if known.is_empty() { "none".into() } else { known.join(", ") },
        })
    }

    /// `path` in its canonical form if it lies in the home folder or an allowed folder; the
    /// error `path_not_allowed` otherwise. Callers use the returned path, not the one they gave.
    pub fn confine(&self, path: &Path, access: Access) -> Result<PathBuf> {
        let refuse = |reason: String| Error::PathNotAllowed {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_absolute() {
            return Err(refuse("it is not an absolute path".into()));
        }
        let (resolved, exists) = resolve(path).map_err(|why| match why {
            Unresolvable::Refused(reason) => refuse(reason),
            Unresolvable::Io(source) => Error::Io {
                action: "look up",
                path: path.to_path_buf(),
                source,
            },
        })?;
        let roots = self.allowed_roots()?;
        if !roots.iter().any(|root| resolved.starts_with(root)) {
            let reason = if resolved == path {
                "it is outside the allowed folders".to_string()
            } else {
                format!("it leads to {}, outside the allowed folders", resolved.display())
            };
            return Err(refuse(reason));
        }
        // Only now say whether it exists, so that requests cannot probe for files outside.
        if access == Access::Read && !exists {
            return Err(Error::Io {
                action: "read",
                path: path.to_path_buf(),
                source: std::io::Error::from(ErrorKind::NotFound),
            });
        }
        Ok(resolved)
    }

    fn canonical_home(&self) -> Result<PathBuf> {
        std::fs::canonicalize(self.home()).map_err(|source| Error::Io {
            action: "find the Whetstone home folder",
            path: self.home().to_path_buf(),
            source,
        })
    }

    /// The home folder and every allowed folder that still is what was allowed: a folder that
    /// was deleted or replaced by a link since then no longer counts.
    fn allowed_roots(&self) -> Result<Vec<PathBuf>> {
        let mut roots = vec![self.canonical_home()?];
        for folder in self.allowed_folders()? {
            let stored = PathBuf::from(&folder.path);
            if std::fs::canonicalize(&stored).is_ok_and(|c| c == stored && c.is_dir()) {
                roots.push(stored);
            }
        }
        Ok(roots)
    }
}

enum Unresolvable {
    Refused(String),
    Io(std::io::Error),
}

/// Where `path` really leads, and whether it exists. For a path that does not exist yet, the
/// deepest part that does is canonicalised and the rest appended, which must be plain names.
fn resolve(path: &Path) -> std::result::Result<(PathBuf, bool), Unresolvable> {
    match std::fs::canonicalize(path) {
        Ok(canonical) => return Ok((canonical, true)),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Unresolvable::Io(e)),
    }
    let components: Vec<Component<'_>> = path.components().collect();
    // `symlink_metadata` sees a dangling link as existing, so it cannot hide in the new part.
    let existing = (1..=components.len())
        .rev()
        .find(|&n| std::fs::symlink_metadata(components[..n].iter().collect::<PathBuf>()).is_ok())
        .unwrap_or(0);
    let (head, tail) = components.split_at(existing);
    let mut resolved = match std::fs::canonicalize(head.iter().collect::<PathBuf>()) {
        Ok(p) => p,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Unresolvable::Refused(
                "it goes through a link that points to nothing".into(),
            ))
        }
        Err(e) => return Err(Unresolvable::Io(e)),
    };
    for component in tail {
        match component {
            Component::Normal(name) => resolved.push(name),
            Component::CurDir => {}
            _ => {
                return Err(Unresolvable::Refused(
                    "it climbs out of a folder that does not exist with `..`".into(),
                ))
            }
        }
    }
    Ok((resolved, false))
}

fn path_text(path: &Path) -> Result<String> {
    path.to_str().map(str::to_string).ok_or_else(|| {
        Error::InvalidInput(format!("{} is not valid Unicode and cannot be stored", path.display()))
    })
}
