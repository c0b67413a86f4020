//! Schema history. Append new migrations at the end; never edit one that has shipped, because
//! databases in the field record only how many of them ran.

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
Migration {
    version: 1,
    name: "models, datasets and runs",
    sql: r#"
CREATE TABLE models (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL,
    source         TEXT    NOT NULL CHECK (source IN ('bundled', 'hub', 'local')),
    location       TEXT    NOT NULL UNIQUE,
    architecture   TEXT,
    parameters     INTEGER,
    license        TEXT,
    commercial_use INTEGER CHECK (commercial_use IN (0, 1)),
    added_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE datasets (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,
    source_path   TEXT    NOT NULL,
    source_sha256 TEXT    NOT NULL CHECK (length(source_sha256) = 64),
    rows          INTEGER NOT NULL CHECK (rows >= 0),
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE runs (
    id         INTEGER PRIMARY KEY,
    model_id   INTEGER NOT NULL REFERENCES models(id) ON DELETE RESTRICT,
    dataset_id INTEGER REFERENCES datasets(id) ON DELETE RESTRICT,
    config     TEXT    NOT NULL CHECK (json_valid(config)),
    status     TEXT    NOT NULL,
    out_dir    TEXT    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX runs_model_id ON runs(model_id);
CREATE INDEX runs_dataset_id ON runs(dataset_id);
"#,
},
Migration {
    version: 2,
    name: "where each model came from",
    sql: r#"
ALTER TABLE models ADD COLUMN path TEXT;
ALTER TABLE models ADD COLUMN repo_id TEXT;
ALTER TABLE models ADD COLUMN revision TEXT;
ALTER TABLE models ADD COLUMN files TEXT CHECK (files IS NULL OR json_valid(files));
ALTER TABLE models ADD COLUMN sha256 TEXT;
ALTER TABLE models ADD COLUMN context_length INTEGER;
"#,
},
];

pub const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;
