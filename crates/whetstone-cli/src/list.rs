use clap::Subcommand;
use whetstone_api::Api;

#[derive(Subcommand)]
pub enum ListAction {
    /// List them
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

pub fn models(api: &Api, action: &ListAction) -> anyhow::Result<()> {
    let ListAction::List { json } = action;
    let models = api.list_models()?;
    if *json {
        return print_json(&models);
    }
    let rows = models
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.name.clone(),
                m.source.to_string(),
                m.architecture.clone().unwrap_or_else(|| "?".into()),
                m.parameters.map(human_count).unwrap_or_else(|| "?".into()),
                m.license.clone().unwrap_or_else(|| "unknown".into()),
                m.location.clone(),
            ]
        })
        .collect();
    print_table(
        "models",
        &["ID", "NAME", "SOURCE", "ARCH", "PARAMS", "LICENSE", "LOCATION"],
        rows,
    );
    Ok(())
}

pub fn datasets(api: &Api, action: &ListAction) -> anyhow::Result<()> {
    let ListAction::List { json } = action;
    let datasets = api.list_datasets()?;
    if *json {
        return print_json(&datasets);
    }
    let rows = datasets
        .iter()
        .map(|d| {
            vec![
                d.id.to_string(),
                d.name.clone(),
                d.rows.to_string(),
                d.created_at.clone(),
                d.source_path.clone(),
            ]
        })
        .collect();
    print_table("datasets", &["ID", "NAME", "ROWS", "CREATED", "SOURCE"], rows);
    Ok(())
}

pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub(crate) fn print_table(what: &str, header: &[&str], rows: Vec<Vec<String>>) {
    if rows.is_empty() {
        println!("No {what} yet.");
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Parameter counts as people say them: 135M, 1.5B.
pub(crate) fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.0}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.0}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}
