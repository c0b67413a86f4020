//! A set of export artifacts and how it lands in a folder.

use std::path::{Component, Path, PathBuf};

use crate::axolotl::{config, launch_script, Cluster, JobInput, Parallelism};
use crate::card::{render as render_card, CardInput};
use crate::error::{ExportError, Result};
use crate::modelfile::Modelfile;

/// The Axolotl part of an export: the job, how to spread it, and the dataset already written as
/// JSONL rows ([`crate::axolotl::chat_row`], [`crate::axolotl::text_row`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AxolotlExport {
    pub job: JobInput,
    pub parallelism: Parallelism,
    pub cluster: Cluster,
    pub train_jsonl: String,
    pub eval_jsonl: Option<String>,
}

/// What to write; each part is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Artifacts {
    pub modelfile: Option<Modelfile>,
    pub card: Option<CardInput>,
    pub axolotl: Option<AxolotlExport>,
}

pub const AXOLOTL_DIR: &str = "axolotl";

impl Artifacts {
    /// Every file as (path relative to the export folder, content); rendering fails before anything
    /// is written.
    pub fn files(&self) -> Result<Vec<(PathBuf, String)>> {
        let mut files = Vec::new();
        if let Some(card) = &self.card {
            files.push((PathBuf::from("README.md"), render_card(card)?));
        }
        if let Some(m) = &self.modelfile {
            files.push((PathBuf::from("Modelfile"), m.render()?));
        }
        if let Some(a) = &self.axolotl {
            let dir = Path::new(AXOLOTL_DIR);
            let out = config(&a.job, a.parallelism)?;
            files.push((dir.join("config.yml"), out.config_yaml));
            if let Some((path, json)) = out.deepspeed {
                files.push((dir.join(relative(&path)?), json));
            }
            let launch = launch_script(&a.cluster, "config.yml")?;
            files.push((dir.join("README.md"), axolotl_readme(&launch, &a.job.base_model)));
            files.push((dir.join("launch.sh"), launch));
            files.push((
                dir.join(relative(&a.job.train_file)?),
                a.train_jsonl.clone(),
            ));
            match (&a.job.eval_file, &a.eval_jsonl) {
                (Some(path), Some(rows)) => files.push((dir.join(relative(path)?), rows.clone())),
                (None, None) => {}
                _ => {
                    return Err(ExportError::Invalid(
                        "the job's eval file and its rows must be given together".into(),
                    ))
                }
            }
        }
        Ok(files)
    }
}

fn axolotl_readme(launch: &str, base_model: &str) -> String {
    // Axolotl loads Hugging Face weights by repo id or folder; a GGUF file or a path on this
    // machine will not load on the cluster, so say what to put there instead.
    let local = Path::new(base_model).is_absolute() || base_model.ends_with(".gguf");
    let base_note = if local {
        format!(
            "**Before you start**: `base_model` in `config.yml` is `{base_model}`, a file on the machine this was \
exported from. Axolotl needs the model's Hugging Face weights: replace it with the hub repo id (`org/name`) or a \
folder with `config.json` and `*.safetensors` that every node can read.\n\n"
        )
    } else {
        String::new()
    };
    format!(
        "# Training this job with Axolotl\n\n{base_note}\
`config.yml` is the same job as the Whetstone run, in Axolotl's config format; the dataset files beside it hold the \
same rows. Install Axolotl (<https://github.com/axolotl-ai-cloud/axolotl>) on every machine, copy this folder to each, \
and run `launch.sh` on every node with `MACHINE_RANK` set to its number (0 on the main node).\n\n\
On one GPU, `axolotl train config.yml` is enough.\n\n```sh\n{launch}```\n"
    )
}

/// A path inside the export folder; anything that could land outside it is refused.
fn relative(path: &str) -> Result<PathBuf> {
    let p = Path::new(path);
    let inside = p
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && p.components().next().is_some();
    if inside {
        Ok(p.to_path_buf())
    } else {
        Err(ExportError::Invalid(format!(
            "{path:?} must be a relative path inside the export folder"
        )))
    }
}

/// Writes the artifacts into `dir` and returns the paths written. A folder that already holds
/// anything is refused unless `overwrite` is set, so nothing the user had is replaced unasked. A new
/// folder is filled beside its final name and renamed into place, so it appears complete or not at
/// all; into an existing folder each file is replaced atomically.
pub fn write(dir: &Path, artifacts: &Artifacts, overwrite: bool) -> Result<Vec<PathBuf>> {
    let files = artifacts.files()?;
    let exists = dir.exists();
    let empty = whetstone_files::is_empty_dir(dir).map_err(|e| ExportError::io(dir, e))?;
    if exists && !empty && !overwrite {
        return Err(ExportError::FolderNotEmpty {
            path: dir.to_path_buf(),
        });
    }
    let target = if exists {
        dir.to_path_buf()
    } else {
        whetstone_files::temp_path(dir)
    };
    let result = fill(&target, &files);
    if exists {
        return result.map(|_| files.iter().map(|(p, _)| dir.join(p)).collect());
    }
    let finish = result.and_then(|_| {
        std::fs::rename(&target, dir).map_err(|e| ExportError::io(dir, e))?;
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        whetstone_files::sync_dir(parent).map_err(|e| ExportError::io(parent, e))
    });
    if finish.is_err() {
        let _ = std::fs::remove_dir_all(&target);
    }
    finish.map(|_| files.iter().map(|(p, _)| dir.join(p)).collect())
}

fn fill(root: &Path, files: &[(PathBuf, String)]) -> Result<()> {
    for (rel, content) in files {
        let path = root.join(rel);
        whetstone_files::write_atomic(&path, content.as_bytes())
            .map_err(|e| ExportError::io(&path, e))?;
        if rel.extension().is_some_and(|e| e == "sh") {
            make_executable(&path)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| ExportError::io(path, e))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<()> {
    Ok(())
}
