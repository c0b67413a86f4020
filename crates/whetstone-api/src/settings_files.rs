//! Settings files the app opens and saves: the same files `whet train --config FILE` reads, in
//! TOML, YAML or JSON (told by the extension), through the one reader in
//! [`whetstone_engine::settings_file`]. A file's settings are laid over the defaults that
//! `train_defaults` reports, so a file that names only `learning_rate` opens as the defaults with
//! that one change, exactly as `whet train --config` would train it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use whetstone_engine::run::TrainSettings;
use whetstone_engine::settings_file::{self, Format};

use crate::error::{write_atomic, Error, Result};
use crate::Api;

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ConfigOpen {
    /// A .toml, .yaml/.yml or .json file.
    pub path: PathBuf,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct ConfigOpened {
    pub path: PathBuf,
    pub format: Format,
    /// Every setting: the file's, and the defaults for those it leaves out.
    pub settings: TrainSettings,
    /// What in the file was understood but not used here, one sentence each.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ConfigSave {
    /// Where to write; the extension (.toml, .yaml/.yml, .json) decides the format.
    pub path: PathBuf,
    pub settings: TrainSettings,
    /// Replace a file that is already there; without it an existing file is refused.
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct ConfigSaved {
    pub path: PathBuf,
    pub format: Format,
    /// Whether a file was there and has been replaced.
    pub replaced: bool,
}

impl Api {
    /// Reads a settings file as `whet train --config` does, over the defaults.
    pub fn config_open(&self, path: &Path) -> Result<ConfigOpened> {
        let format = Format::from_path(path)?;
        if path.is_dir() {
            return Err(Error::InvalidInput(format!("{} is a folder, not a settings file", path.display())));
        }
        let file = settings_file::read_over(path, self.default_settings())?;
        Ok(ConfigOpened { path: path.to_path_buf(), format, settings: file.settings, warnings: file.warnings })
    }

    /// Writes `settings` to a file `whet train --config` reads back as the same settings. Settings a
    /// run would refuse are refused here too, and an existing file is kept unless `overwrite`.
    pub fn config_save(&self, req: &ConfigSave) -> Result<ConfigSaved> {
        let format = Format::from_path(&req.path)?;
        req.settings.validate()?;
        if req.path.is_dir() {
            return Err(Error::InvalidInput(format!("{} is a folder; give the settings file a name", req.path.display())));
        }
        let text = settings_file::render(&req.settings, format)?;
        // The text is read back before anything is written: a file that would not train as these
        // settings is never left on disk.
        let back = settings_file::parse_text(&text, format, self.default_settings())?;
        if back.settings != req.settings {
            return Err(Error::Internal(format!(
                "the settings written as {format:?} read back differently; nothing was saved:\n{text}"
            )));
        }
        let existed = std::fs::symlink_metadata(&req.path).is_ok();
        if existed && !req.overwrite {
            return Err(Error::FileExists { path: req.path.clone() });
        }
        if req.overwrite {
            write_atomic(&req.path, text.as_bytes())?;
        } else {
            whetstone_files::write_new(&req.path, text.as_bytes()).map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => Error::FileExists { path: req.path.clone() },
                _ => Error::Io { action: "write", path: req.path.clone(), source },
            })?;
        }
        Ok(ConfigSaved { path: req.path.clone(), format, replaced: existed })
    }

    /// The defaults a settings file is laid over: those `train_defaults` reports.
    fn default_settings(&self) -> TrainSettings {
        TrainSettings::default()
    }
}
