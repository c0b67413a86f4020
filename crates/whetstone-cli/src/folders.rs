//! `whet folders`: the folders that the HTTP server and the app may read and write besides
//! Whetstone's home folder.

use crate::list::{print_json, print_table};
use clap::Subcommand;
use std::path::PathBuf;
use whetstone_api::Api;

#[derive(Subcommand)]
pub enum FoldersCommand {
    /// List the allowed folders (the home folder is always allowed)
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Allow an existing folder and everything under it
    Add { dir: PathBuf },
    /// Stop allowing a folder
    Remove { dir: PathBuf },
}

pub fn run(api: &Api, command: &FoldersCommand) -> anyhow::Result<()> {
    match command {
        FoldersCommand::List { json } => {
            let folders = api.allowed_folders()?;
            if *json {
                return print_json(&serde_json::json!({
                    "home": api.home(),
                    "folders": folders,
                }));
            }
            println!("Always allowed: {} (Whetstone's home folder)", api.home().display());
            let rows = folders
                .into_iter()
                .map(|f| vec![f.path, f.added_at])
                .collect();
            print_table("other allowed folders", &["FOLDER", "ADDED"], rows);
        }
        FoldersCommand::Add { dir } => {
            let folder = api.allow_folder(dir)?;
            println!("allowed {}", folder.path);
        }
        FoldersCommand::Remove { dir } => {
            let folder = api.forget_folder(dir)?;
            println!("no longer allowed: {}", folder.path);
        }
    }
    Ok(())
}
