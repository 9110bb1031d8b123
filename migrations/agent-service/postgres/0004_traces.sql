-- Stored traces: one row per run (the summary the list endpoint pages over) and its span
-- tree. Timestamps: `started_at` is Unix milliseconds; span offsets and durations are
-- microseconds from the trace start. Attributes and payloads are JSON TEXT; payloads are
-- redacted before they are written.

CREATE TABLE traces (
    trace_id           TEXT PRIMARY KEY,
    tenant             TEXT NOT NULL,
    request_id         TEXT NOT NULL,
    workflow           TEXT NOT NULL,
    status             TEXT NOT NULL,
    error_code         TEXT,
    started_at         BIGINT NOT NULL,
    duration_us        BIGINT NOT NULL,
    prompt_tokens      BIGINT NOT NULL,
    completion_tokens  BIGINT NOT NULL,
    cost_usd           DOUBLE PRECISION NOT NULL,
    model              TEXT NOT NULL,
    provider           TEXT NOT NULL,
    span_count         BIGINT NOT NULL
);
-- Newest first per tenant, and the same order under each equality filter.
CREATE INDEX traces_tenant_started ON traces (tenant, started_at DESC, trace_id DESC);
CREATE INDEX traces_tenant_status ON traces (tenant, status, started_at DESC, trace_id DESC);
CREATE INDEX traces_tenant_workflow ON traces (tenant, workflow, started_at DESC, trace_id DESC);
CREATE INDEX traces_tenant_request ON traces (tenant, request_id);
-- Retention walks the tenants and uses traces_tenant_started: no index of its own, since
-- every index costs each insert.

-- The span tree of each trace, as one JSON array (span_id, parent_span_id, name, kind,
-- status, start_us, duration_us, attributes, payload): read whole, written once.
CREATE TABLE spans (
    trace_id  TEXT PRIMARY KEY,
    spans     TEXT NOT NULL
);
