-- The job queue: long workflow runs taken by in-process workers under a lease.
-- Timestamps are Unix milliseconds (BIGINT); flags are BIGINT 0/1; JSON is stored as TEXT.
--
-- status: queued -> running -> succeeded | failed | dead | cancelled; a running job whose
-- lease expired (its worker died) goes back to queued, or to dead on its last attempt.
-- callback_state: NULL (no callback_url) | pending | delivered | failed.

CREATE TABLE jobs (
    id                    TEXT PRIMARY KEY,
    tenant                TEXT NOT NULL,
    key_id                TEXT NOT NULL,
    key_name              TEXT NOT NULL,
    workflow              TEXT NOT NULL,
    input_text            TEXT NOT NULL,
    user_id               TEXT,
    request_id            TEXT NOT NULL,
    status                TEXT NOT NULL,
    attempts              BIGINT NOT NULL DEFAULT 0,
    max_attempts          BIGINT NOT NULL,
    run_after             BIGINT NOT NULL,
    lease_owner           TEXT,
    lease_token           TEXT,
    lease_expires_at      BIGINT,
    heartbeat_at          BIGINT,
    cancel_requested      BIGINT NOT NULL DEFAULT 0,
    result                TEXT,
    error_code            TEXT,
    error_message         TEXT,
    callback_url          TEXT,
    callback_state        TEXT,
    callback_attempts     BIGINT NOT NULL DEFAULT 0,
    callback_next_at      BIGINT,
    callback_status_code  BIGINT,
    callback_error        TEXT,
    callback_at           BIGINT,
    created_at            BIGINT NOT NULL,
    started_at            BIGINT,
    finished_at           BIGINT,
    updated_at            BIGINT NOT NULL
);
-- Claiming: the oldest due queued job.
CREATE INDEX jobs_claim ON jobs (status, run_after, id);
-- Reaping: running jobs whose lease expired.
CREATE INDEX jobs_lease ON jobs (status, lease_expires_at);
-- Listing: a tenant's jobs newest first, optionally by status.
CREATE INDEX jobs_tenant ON jobs (tenant, id);
CREATE INDEX jobs_tenant_status ON jobs (tenant, status, id);
-- Callback delivery: pending callbacks that are due.
CREATE INDEX jobs_callback ON jobs (callback_state, callback_next_at);
