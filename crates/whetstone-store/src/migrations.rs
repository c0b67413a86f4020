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
    name: "runs as worker jobs: pid, progress, heartbeat, error, best evaluation",
    sql: r#"
ALTER TABLE runs ADD COLUMN pid            INTEGER;
ALTER TABLE runs ADD COLUMN step           INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN total_steps    INTEGER;
ALTER TABLE runs ADD COLUMN last_loss      REAL;
ALTER TABLE runs ADD COLUMN best_step      INTEGER;
ALTER TABLE runs ADD COLUMN best_eval_loss REAL;
ALTER TABLE runs ADD COLUMN heartbeat_at   TEXT;
ALTER TABLE runs ADD COLUMN error          TEXT;
"#,
},
Migration {
    version: 3,
    name: "dataset versions with provenance",
    sql: r#"
CREATE TABLE dataset_versions (
    id          INTEGER PRIMARY KEY,
    dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL CHECK (version >= 1),
    parent      INTEGER CHECK (parent IS NULL OR (parent >= 1 AND parent < version)),
    steps       TEXT    NOT NULL CHECK (json_valid(steps)),
    rows_path   TEXT    NOT NULL,
    rows        INTEGER NOT NULL CHECK (rows >= 0),
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (dataset_id, version)
);
"#,
},
Migration {
    version: 4,
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
Migration {
    version: 5,
    name: "folders the API may read and write",
    sql: r#"
CREATE TABLE allowed_folders (
    id       INTEGER PRIMARY KEY,
    path     TEXT    NOT NULL UNIQUE CHECK (length(path) > 0),
    added_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"#,
},
Migration {
    version: 6,
    name: "evaluations: per-item outputs of each side and aggregate metrics",
    sql: r#"
CREATE TABLE evaluations (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    compare_run_id  INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    model           TEXT    NOT NULL CHECK (length(model) > 0),
    adapter         TEXT,
    dataset_id      INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
    dataset_version INTEGER CHECK (dataset_version IS NULL OR dataset_version >= 1),
    split           TEXT    CHECK (split IS NULL OR split IN ('train', 'val', 'test')),
    source          TEXT    NOT NULL,
    settings        TEXT    NOT NULL CHECK (json_valid(settings)),
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX evaluations_run_id ON evaluations(run_id);

CREATE TABLE evaluation_items (
    evaluation_id INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL CHECK (position >= 1),
    line          INTEGER,
    messages      TEXT    NOT NULL CHECK (json_valid(messages)),
    prompt        TEXT    NOT NULL,
    input         TEXT    CHECK (input IS NULL OR json_valid(input)),
    reference     TEXT,
    PRIMARY KEY (evaluation_id, position)
);

CREATE TABLE evaluation_outputs (
    evaluation_id INTEGER NOT NULL,
    position      INTEGER NOT NULL,
    side          TEXT    NOT NULL CHECK (side IN ('base', 'tuned', 'compare')),
    text          TEXT    NOT NULL,
    tokens        INTEGER NOT NULL CHECK (tokens >= 0),
    scores        TEXT    CHECK (scores IS NULL OR json_valid(scores)),
    PRIMARY KEY (evaluation_id, position, side),
    FOREIGN KEY (evaluation_id, position) REFERENCES evaluation_items(evaluation_id, position) ON DELETE CASCADE
);

CREATE TABLE evaluation_metrics (
    evaluation_id INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
    side          TEXT    NOT NULL CHECK (side IN ('base', 'tuned', 'compare')),
    metrics       TEXT    NOT NULL CHECK (json_valid(metrics)),
    PRIMARY KEY (evaluation_id, side)
);
"#,
},
Migration {
    version: 7,
    name: "review sessions: raters with hashed invite tokens, their queues and every rating they submitted",
    sql: r#"
CREATE TABLE review_sessions (
    id              INTEGER PRIMARY KEY,
    evaluation_id   INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE RESTRICT,
    name            TEXT    NOT NULL CHECK (length(name) > 0),
    baseline        TEXT    NOT NULL CHECK (baseline IN ('base', 'tuned', 'compare')),
    candidate       TEXT    NOT NULL CHECK (candidate IN ('base', 'tuned', 'compare') AND candidate <> baseline),
    criteria        TEXT    NOT NULL CHECK (json_valid(criteria)),
    raters_per_item INTEGER NOT NULL CHECK (raters_per_item >= 1),
    seed            INTEGER NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    closed_at       TEXT
);

CREATE TABLE review_raters (
    id           INTEGER PRIMARY KEY,
    session_id   INTEGER NOT NULL REFERENCES review_sessions(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL CHECK (length(name) > 0),
    kind         TEXT    NOT NULL CHECK (kind IN ('human', 'machine')),
    token_sha256 TEXT    NOT NULL UNIQUE CHECK (length(token_sha256) = 64),
    expires_at   TEXT,
    revoked_at   TEXT,
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (session_id, name)
);

CREATE TABLE review_assignments (
    rater_id INTEGER NOT NULL REFERENCES review_raters(id) ON DELETE CASCADE,
    item     INTEGER NOT NULL CHECK (item >= 1),
    queue    INTEGER NOT NULL CHECK (queue >= 1),
    swapped  INTEGER NOT NULL CHECK (swapped IN (0, 1)),
    PRIMARY KEY (rater_id, item)
);

CREATE TABLE review_ratings (
    id         INTEGER PRIMARY KEY,
    rater_id   INTEGER NOT NULL,
    item       INTEGER NOT NULL,
    rating     TEXT    NOT NULL CHECK (json_valid(rating)),
    current    INTEGER NOT NULL CHECK (current IN (0, 1)),
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    FOREIGN KEY (rater_id, item) REFERENCES review_assignments(rater_id, item) ON DELETE CASCADE
);

CREATE UNIQUE INDEX review_ratings_current ON review_ratings(rater_id, item) WHERE current = 1;
"#,
},
Migration {
    version: 8,
    name: "data queues: model-written variations and sampled rows waiting for a person's decision before they enter a version",
    sql: r#"
CREATE TABLE data_queues (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('augment', 'sample')),
    dataset_id      INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    version         INTEGER NOT NULL CHECK (version >= 1),
    settings        TEXT    NOT NULL CHECK (json_valid(settings)),
    applied_version INTEGER CHECK (applied_version IS NULL OR applied_version > version),
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    applied_at      TEXT
);

CREATE INDEX data_queues_dataset_id ON data_queues(dataset_id);

CREATE TABLE data_queue_items (
    queue_id   INTEGER NOT NULL REFERENCES data_queues(id) ON DELETE CASCADE,
    item       INTEGER NOT NULL CHECK (item >= 1),
    source_row INTEGER NOT NULL CHECK (source_row >= 1),
    row        TEXT    NOT NULL CHECK (json_valid(row)),
    provenance TEXT    CHECK (provenance IS NULL OR json_valid(provenance)),
    problem    TEXT,
    decision   TEXT    CHECK (decision IS NULL OR decision IN ('accept', 'edit', 'reject', 'flag')),
    edited_row TEXT    CHECK (edited_row IS NULL OR json_valid(edited_row)),
    note       TEXT,
    decided_at TEXT,
    CHECK ((decision IS 'edit') = (edited_row IS NOT NULL)),
    PRIMARY KEY (queue_id, item)
);
"#,
},
];

pub const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;
