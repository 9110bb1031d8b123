-- Runtime schema: API keys, the demo domain, pending approvals, idempotency, usage.
-- Timestamps are Unix milliseconds (BIGINT); JSON is stored as TEXT.

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL,
    roles       TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant);

CREATE TABLE tickets (
    tenant          TEXT NOT NULL,
    id              TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    priority        TEXT NOT NULL,
    customer_email  TEXT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE invoices (
    tenant      TEXT NOT NULL,
    id          TEXT NOT NULL,
    vendor      TEXT NOT NULL,
    amount_usd  DOUBLE PRECISION NOT NULL,
    status      TEXT NOT NULL,
    due_date    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE kb_articles (
    tenant  TEXT NOT NULL,
    id      TEXT NOT NULL,
    title   TEXT NOT NULL,
    body    TEXT NOT NULL,
    tags    TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE approvals (
    id                  TEXT PRIMARY KEY,
    tenant              TEXT NOT NULL,
    workflow            TEXT NOT NULL,
    tool                TEXT NOT NULL,
    arguments           TEXT NOT NULL,
    proposed_change     TEXT NOT NULL,
    evidence            TEXT NOT NULL,
    risk_tier           BIGINT NOT NULL,
    requested_by        TEXT NOT NULL,
    requested_by_user   TEXT,
    request_id          TEXT NOT NULL,
    trace_id            TEXT NOT NULL,
    required_approvals  BIGINT NOT NULL,
    status              TEXT NOT NULL,
    release_version     TEXT NOT NULL,
    release_git_sha     TEXT NOT NULL,
    release_track       TEXT NOT NULL,
    policy_version      TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX approvals_tenant_status ON approvals (tenant, status, created_at);

CREATE TABLE idempotency_keys (
    tenant        TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status_code   BIGINT,
    response      TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant, key)
);

CREATE TABLE tenant_usage (
    tenant    TEXT NOT NULL,
    day       TEXT NOT NULL,
    tokens    BIGINT NOT NULL,
    cost_usd  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, day)
);
