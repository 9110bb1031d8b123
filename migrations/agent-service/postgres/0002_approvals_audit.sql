-- Approval decisions and execution, the tamper-evident audit log, the write freeze.
-- Timestamps are Unix milliseconds (BIGINT); flags are BIGINT 0/1; JSON is stored as TEXT.
--
-- approvals.status: pending -> approved -> executing -> executed | failed;
--                   pending -> rejected | expired | cancelled.

-- Approve decisions so far (N-of-M), and the execution: attempts, the lease an HTTP tool
-- call holds while `executing`, and the stored result (the new record) or error.
ALTER TABLE approvals ADD COLUMN approvals_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE approvals ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE approvals ADD COLUMN lease_owner TEXT;
ALTER TABLE approvals ADD COLUMN lease_until BIGINT;
ALTER TABLE approvals ADD COLUMN result TEXT;
ALTER TABLE approvals ADD COLUMN error TEXT;
ALTER TABLE approvals ADD COLUMN decided_at BIGINT;
ALTER TABLE approvals ADD COLUMN executed_at BIGINT;
-- The sweeper: pending past expiry, approved to re-drive, executing with a stale lease.
CREATE INDEX approvals_status_expiry ON approvals (status, expires_at);
-- Listing a tenant's approvals newest first.
CREATE INDEX approvals_tenant_created ON approvals (tenant, created_at, id);

-- One row per approver per approval: a decision is final, and the same approver cannot
-- count twice towards required_approvals.
CREATE TABLE approval_decisions (
    approval_id  TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    approver     TEXT NOT NULL,
    approver_name TEXT NOT NULL,
    decision     TEXT NOT NULL,
    reason       TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    decided_at   BIGINT NOT NULL,
    PRIMARY KEY (approval_id, approver)
);

-- Append-only, hash-chained audit events. `tenant` names the chain: a tenant id, or
-- `_system` for service-level events (no tenant id can start with '_').
-- hash = sha256(prev_hash || canonical JSON of the event fields).
CREATE TABLE audit_events (
    tenant          TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    id              TEXT NOT NULL UNIQUE,
    at              BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    resource        TEXT NOT NULL,
    details         TEXT NOT NULL,
    request_id      TEXT,
    policy_version  TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    PRIMARY KEY (tenant, seq)
);
CREATE INDEX audit_events_action ON audit_events (tenant, action, seq);
CREATE INDEX audit_events_resource ON audit_events (tenant, resource, seq);

-- The head of each chain: appends lock this row, so a chain has one writer at a time.
CREATE TABLE audit_heads (
    tenant  TEXT PRIMARY KEY,
    seq     BIGINT NOT NULL,
    hash    TEXT NOT NULL
);

-- The write freeze per tenant (the incident kill switch); every replica reads it here.
CREATE TABLE write_freezes (
    tenant      TEXT PRIMARY KEY,
    frozen      BIGINT NOT NULL,
    reason      TEXT,
    actor       TEXT,
    changed_at  BIGINT NOT NULL
);
