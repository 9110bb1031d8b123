-- The console's local store (SQLite in the app data dir). No secrets here: API keys and
-- tokens live in the OS keyring, keyed by profile id. Times are unix milliseconds.

CREATE TABLE profiles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('agent', 'kubernetes')),
    -- agent: the service's base URL
    url         TEXT,
    -- kubernetes: the kubeconfig context and the namespace
    context     TEXT,
    namespace   TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Downsampled points for charts, kept for the retention the user chose.
CREATE TABLE metric_points (
    service  TEXT NOT NULL,
    track    TEXT NOT NULL,
    metric   TEXT NOT NULL,
    t_ms     INTEGER NOT NULL,
    value    REAL NOT NULL,
    PRIMARY KEY (service, track, metric, t_ms)
) WITHOUT ROWID;

CREATE INDEX metric_points_t ON metric_points (t_ms);

CREATE TABLE smoke_runs (
    id           TEXT PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    ollama_url   TEXT NOT NULL,
    model        TEXT NOT NULL,
    passed       INTEGER NOT NULL,
    failed       INTEGER NOT NULL,
    skipped      INTEGER NOT NULL,
    -- the whole report as JSON
    report       TEXT NOT NULL
);

CREATE INDEX smoke_runs_started ON smoke_runs (started_at);

-- What an operator did from this console: who, what, on what, how it ended.
CREATE TABLE action_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    outcome  TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'cancelled')),
    detail   TEXT NOT NULL DEFAULT ''
);

CREATE INDEX action_log_at ON action_log (at);
