-- Eval runs and their per-case results. Timestamps are Unix milliseconds;
-- JSON is stored as TEXT.

CREATE TABLE eval_runs (
    id                TEXT PRIMARY KEY,
    -- The tenant that owns the run (the API caller's, or the CLI's --tenant).
    tenant            TEXT NOT NULL,
    suite             TEXT NOT NULL,
    suite_hash        TEXT NOT NULL,
    -- 'api' runs are executed by a server's eval worker; 'cli' runs by `eval run`.
    origin            TEXT NOT NULL,
    -- queued | running | completed | failed
    status            TEXT NOT NULL,
    done              BIGINT NOT NULL,
    total             BIGINT NOT NULL,
    baseline_run_id   TEXT,
    release_version   TEXT NOT NULL,
    git_sha           TEXT NOT NULL,
    track             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    prompt_version    TEXT NOT NULL,
    policy_version    TEXT NOT NULL,
    policy_hash       TEXT NOT NULL,
    tool_schema_hash  TEXT NOT NULL,
    -- Digest of the versions above: only a process with the same pin executes the run.
    pin               TEXT NOT NULL,
    requested_by      TEXT NOT NULL,
    worker            TEXT,
    lease_until       BIGINT NOT NULL,
    pass_rate         DOUBLE PRECISION,
    gate              TEXT,
    -- {scores, gate, baseline} once the run completed.
    summary           TEXT,
    error             TEXT,
    created_at        BIGINT NOT NULL,
    started_at        BIGINT,
    finished_at       BIGINT,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX eval_runs_tenant_created ON eval_runs (tenant, created_at, id);
CREATE INDEX eval_runs_claim ON eval_runs (status, pin, created_at);

CREATE TABLE eval_case_results (
    run_id      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    case_id     TEXT NOT NULL,
    passed      BIGINT NOT NULL,
    status      TEXT NOT NULL,
    latency_ms  BIGINT NOT NULL,
    -- The full CaseResult (redacted).
    result      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (run_id, case_id)
);
CREATE INDEX eval_case_results_run_seq ON eval_case_results (run_id, seq);
