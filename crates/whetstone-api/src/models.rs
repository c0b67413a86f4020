//! Models: the catalog, hub search and pulls, local imports, and finding a model by name.

use crate::error::{Error, Result};
use crate::Api;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use whetstone_engine::ModelFiles;
use whetstone_hub::{CatalogEntry, DownloadOptions, HubClient, HubModel};
use whetstone_store::{Model, ModelOrigin, ModelSource, NewModel};

/// A catalog entry and, when it is installed, its model id.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct CatalogItem {
    #[serde(flatten)]
    pub entry: CatalogEntry,
    pub installed_model_id: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// Hub repo id, `org/name`.
    pub repo: String,
    /// Branch, tag or commit; `main` when absent.
    #[serde(default)]
    pub revision: Option<String>,
    /// Only these files (e.g. one GGUF); config, tokenizer and safetensors weights when empty.
    #[serde(default)]
    pub files: Vec<String>,
    /// Access token for gated models; else `HF_TOKEN`, else the token `huggingface-cli login` saved.
    #[serde(default)]
    pub token: Option<String>,
    /// Use only what is already downloaded.
    #[serde(default)]
    pub offline: bool,
}

/// What reading a model's files found.
#[derive(Debug, Clone, Serialize)]
pub struct Inspected {
    pub path: PathBuf,
    pub architecture: String,
    pub parameters: u64,
    pub context_length: u64,
    pub license: Option<String>,
    pub files: Vec<serde_json::Value>,
    pub sha256: Option<String>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the network runtime: {e}")))
}

impl Api {
    pub fn catalog(&self) -> Result<Vec<CatalogItem>> {
        let models = self.list_models()?;
        Ok(whetstone_hub::catalog()
            .iter()
            .map(|e| CatalogItem {
                installed_model_id: models
                    .iter()
                    .find(|m| m.origin.repo_id.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(&e.repo)))
                    .map(|m| m.id),
                entry: e.clone(),
            })
            .collect())
    }

    /// Hub models whose id matches `query` (the endpoint is `HF_ENDPOINT` when set).
    pub fn search_models(&self, query: &str, limit: usize) -> Result<Vec<HubModel>> {
        let client = HubClient::from_env(None)?;
        runtime()?.block_on(client.search(query, limit)).map_err(Error::from)
    }

    /// Downloads a hub model into the shared HF cache (resuming what an earlier pull left), checks it
    /// loads, and records it. Pulling a repo again updates its row.
    pub fn pull_model(
        &self,
        req: &PullRequest,
        cancel: Option<Arc<AtomicBool>>,
        progress: Option<Arc<whetstone_hub::ProgressFn>>,
    ) -> Result<Model> {
        let revision = req.revision.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| "main".into());
        let mut client = HubClient::from_env(req.token.clone())?;
        if req.offline {
            client = client.offline(true);
        }
        let files = (!req.files.is_empty()).then_some(req.files.as_slice());
        let snap = runtime()?.block_on(client.download(&req.repo, &revision, files, &DownloadOptions { cancel, progress }))?;
        let ggufs: Vec<&str> = snap.files.iter().map(|f| f.name.as_str()).filter(|n| n.ends_with(".gguf")).collect();
        let has_config = snap.files.iter().any(|f| f.name == "config.json");
        let (path, location) = match ggufs.as_slice() {
            [one] if !has_config => (snap.path.join(one), format!("{}/{one}", req.repo)),
            [] | [_] => (snap.path.clone(), req.repo.clone()),
            _ => return Err(Error::InvalidInput(format!("pull one GGUF file at a time; got {}", ggufs.join(", ")))),
        };
        let mut found = inspect_model(&path)?;
        found.files = snap.files.iter().map(|f| serde_json::to_value(f).unwrap_or_default()).collect();
        let catalog = whetstone_hub::catalog::find(&req.repo);
        let license = snap.license.clone().or_else(|| catalog.map(|c| c.license.clone())).or(found.license.clone());
        let commercial_use = catalog
            .map(|c| c.commercial_use)
            .or_else(|| license.as_deref().and_then(whetstone_hub::catalog::commercial_use_of));
        let new = NewModel {
            name: catalog.map(|c| c.name.clone()).unwrap_or_else(|| req.repo.rsplit('/').next().unwrap_or(&req.repo).to_string()),
            source: ModelSource::Hub,
            location,
            architecture: Some(found.architecture.clone()),
            parameters: Some(found.parameters),
            license,
            commercial_use,
        };
        let origin = ModelOrigin {
            path: Some(path.display().to_string()),
            repo_id: Some(req.repo.clone()),
            revision: Some(snap.commit.clone()),
            files: Some(serde_json::Value::Array(found.files)),
            sha256: found.sha256,
            context_length: Some(found.context_length),
        };
        self.upsert_model(&new, &origin)
    }

    /// Records a model folder (config.json, safetensors, tokenizer.json) or GGUF file after checking
    /// that its shape, weights and tokenizer read.
    pub fn import_model(&self, path: &Path) -> Result<Model> {
        let path = std::fs::canonicalize(path).map_err(|source| Error::Io { action: "find the model at", path: path.to_path_buf(), source })?;
        let found = inspect_model(&path)?;
        let repo_id = hub_repo_of_cache_path(&path);
        let catalog = repo_id.as_deref().and_then(whetstone_hub::catalog::find);
        let license = found.license.clone().or_else(|| catalog.map(|c| c.license.clone()));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .map(|n| n.strip_suffix(".gguf").unwrap_or(&n).to_string())
            .filter(|n| !n.is_empty() && !whetstone_hub::cache::is_commit(n))
            .or_else(|| repo_id.as_ref().map(|r| r.rsplit('/').next().unwrap_or(r).to_string()))
            .unwrap_or_else(|| path.display().to_string());
        let new = NewModel {
            name,
            source: ModelSource::Local,
            location: path.display().to_string(),
            architecture: Some(found.architecture.clone()),
            parameters: Some(found.parameters),
            commercial_use: catalog
                .map(|c| c.commercial_use)
                .or_else(|| license.as_deref().and_then(whetstone_hub::catalog::commercial_use_of)),
            license,
        };
        let origin = ModelOrigin {
            path: Some(path.display().to_string()),
            repo_id,
            revision: None,
            files: Some(serde_json::Value::Array(found.files)),
            sha256: found.sha256,
            context_length: Some(found.context_length),
        };
        self.upsert_model(&new, &origin)
    }

    fn upsert_model(&self, new: &NewModel, origin: &ModelOrigin) -> Result<Model> {
        let store = self.store();
        let model = match store.find_model_by_location(&new.location)? {
            Some(m) => store.update_model(m.id, new)?,
            None => store.insert_model(new)?,
        };
        Ok(store.set_model_origin(model.id, origin)?)
    }

    /// Where the files of `spec` are: a path that exists, else a stored model's id, name, hub repo id
    /// or location.
    /// The installed models `spec` names: by id, else by recorded place or hub id, else by name.
    pub(crate) fn installed_models_named(&self, spec: &str) -> Result<Vec<Model>> {
        let models = self.list_models()?;
        let by = |f: &dyn Fn(&Model) -> bool| models.iter().filter(|m| f(m)).cloned().collect::<Vec<_>>();
        let mut hits = by(&|m| spec.parse::<i64>().is_ok_and(|id| id == m.id));
        if hits.is_empty() {
            hits = by(&|m| {
                m.location == spec
                    || m.origin.path.as_deref() == Some(spec)
                    || m.origin.repo_id.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(spec))
            });
        }
        if hits.is_empty() {
            hits = by(&|m| m.name.eq_ignore_ascii_case(spec));
        }
        Ok(hits)
    }

    pub fn resolve_model_path(&self, spec: &str) -> Result<PathBuf> {
        let as_path = Path::new(spec);
        if as_path.exists() {
            return Ok(as_path.to_path_buf());
        }
        match self.installed_models_named(spec)?.as_slice() {
            [m] => {
                let p = PathBuf::from(m.origin.path.clone().unwrap_or_else(|| m.location.clone()));
                if p.exists() {
                    Ok(p)
                } else {
                    Err(Error::InvalidInput(format!("model {} ({}) is recorded at {}, which no longer exists; pull or import it again", m.id, m.name, p.display())))
                }
            }
            [] => Err(Error::InvalidInput(format!(
                "no model file or folder at `{spec}`, and no installed model with that id, name or hub id (see `whet model list`)"
            ))),
            many => Err(Error::InvalidInput(format!(
                "`{spec}` names {} installed models (ids {}); use an id",
                many.len(),
                many.iter().map(|m| m.id.to_string()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// `org/name` when `path` lies in an HF cache snapshot (`models--org--name/snapshots/<commit>`).
fn hub_repo_of_cache_path(path: &Path) -> Option<String> {
    path.ancestors().find_map(|a| {
        let name = a.file_name()?.to_str()?;
        let rest = name.strip_prefix("models--")?;
        let (org, model) = rest.split_once("--")?;
        Some(format!("{org}/{model}"))
    })
}

/// Reads a model's shape, checks its weights are complete and its tokenizer loads.
pub fn inspect_model(path: &Path) -> Result<Inspected> {
    let files = ModelFiles::detect(path)?;
    let config = files.config()?;
    let tokenizer = match &files {
        ModelFiles::Gguf(p) => whetstone_data::Tokenizer::from_gguf_file(p)?,
        ModelFiles::HfDir(d) => whetstone_data::Tokenizer::from_hf_dir(d)?,
    };
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(Error::InvalidInput(format!(
            "{}: the tokenizer has {} tokens but the model only {}",
            path.display(),
            tokenizer.vocab_size(),
            config.vocab_size
        )));
    }
    match &files {
        ModelFiles::Gguf(p) => {
            let header = crate::read_default_model(p)?.ok_or_else(|| Error::InvalidInput(format!("{} vanished while it was read", p.display())))?;
            let size = header.file_bytes;
            Ok(Inspected {
                path: p.clone(),
                architecture: config.architecture.model_type().to_string(),
                parameters: header.parameters,
                context_length: config.max_position_embeddings as u64,
                license: header.license,
                files: vec![serde_json::json!({ "name": p.file_name().map(|n| n.to_string_lossy().to_string()), "size": size })],
                sha256: Some(sha256_of(p)?),
            })
        }
        ModelFiles::HfDir(dir) => {
            let (parameters, files) = check_safetensors(dir)?;
            Ok(Inspected {
                path: dir.clone(),
                architecture: config.architecture.model_type().to_string(),
                parameters,
                context_length: config.max_position_embeddings as u64,
                license: readme_license(dir),
                files,
                sha256: None,
            })
        }
    }
}

/// Every shard the index names is present and has a readable header; returns the parameter count.
fn check_safetensors(dir: &Path) -> Result<(u64, Vec<serde_json::Value>)> {
    let bad = |p: &Path, reason: String| Error::InvalidInput(format!("{}: {reason}", p.display()));
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|source| Error::Io { action: "read", path: index.clone(), source })?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&index, e.to_string()))?;
        let map = v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| bad(&index, "no `weight_map`".into()))?;
        for shard in map.values().filter_map(|s| s.as_str()) {
            if !dir.join(shard).is_file() {
                return Err(bad(dir, format!("the weight shard {shard} listed in model.safetensors.index.json is missing")));
            }
        }
    }
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::Io { action: "list", path: dir.to_path_buf(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    shards.sort();
    if shards.is_empty() {
        return Err(bad(dir, "no .safetensors weights in the folder".into()));
    }
    let mut params = 0u64;
    let mut files = Vec::new();
    for s in &shards {
        let mut f = std::fs::File::open(s).map_err(|source| Error::Io { action: "open", path: s.clone(), source })?;
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut len = [0u8; 8];
        use std::io::Read;
        f.read_exact(&mut len).map_err(|_| bad(s, "too short to be a safetensors file".into()))?;
        let n = u64::from_le_bytes(len);
        if n > 100 << 20 || 8 + n > size {
            return Err(bad(s, "not a safetensors file (bad header length), or cut short".into()));
        }
        let mut header = vec![0u8; n as usize];
        f.read_exact(&mut header).map_err(|_| bad(s, "header cut short".into()))?;
        let v: serde_json::Value = serde_json::from_slice(&header).map_err(|e| bad(s, format!("unreadable header: {e}")))?;
        let mut end = 0u64;
        for (name, t) in v.as_object().into_iter().flatten().filter(|(k, _)| *k != "__metadata__") {
            let shape: Vec<u64> = t.get("shape").and_then(|s| s.as_array()).map(|a| a.iter().filter_map(|d| d.as_u64()).collect()).unwrap_or_default();
            params += shape.iter().product::<u64>();
            let stop = t.pointer("/data_offsets/1").and_then(|o| o.as_u64()).ok_or_else(|| bad(s, format!("tensor {name} has no data offsets")))?;
            end = end.max(stop);
        }
        if 8 + n + end > size {
            return Err(bad(s, format!("cut short: {size} bytes, the header describes {}", 8 + n + end)));
        }
        files.push(serde_json::json!({ "name": s.file_name().map(|n| n.to_string_lossy().to_string()), "size": size }));
    }
    Ok((params, files))
}

/// The `license:` line of a model card's front matter.
fn readme_license(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("README.md")).ok()?;
    let front = text.strip_prefix("---")?.split("\n---").next()?;
    front.lines().find_map(|l| l.trim().strip_prefix("license:").map(|v| v.trim().trim_matches('"').to_string())).filter(|l| !l.is_empty())
}

fn sha256_of(p: &Path) -> Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(p).map_err(|source| Error::Io { action: "read", path: p.to_path_buf(), source })?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|source| Error::Io { action: "read", path: p.to_path_buf(), source })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

