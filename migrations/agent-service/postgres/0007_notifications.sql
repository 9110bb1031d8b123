-- Notifications: receivers configured per tenant, the outbox of events, and one delivery per
-- event and receiver. A delivery is a job of kind 'notify' in the job queue (retries with
-- backoff, dead letters); `notification_deliveries` ties the job to its receiver and event.
-- Timestamps are Unix milliseconds (BIGINT); JSON is stored as TEXT.

-- What a job does: 'invoke' (run a workflow; every job before this migration) or 'notify'
-- (deliver one notification to one receiver).
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'invoke';
CREATE INDEX jobs_tenant_kind ON jobs (tenant, kind, id);

-- A receiver: where a tenant's notifications go. The URL and the secret (webhook signing
-- secret or PagerDuty routing key) are stored only sealed (AES-256-GCM under
-- NOTIFY_SECRET_KEY, bound to the receiver's id); url_hint is scheme://host[:port] for
-- display. events: a JSON array of event kinds; empty means every kind. A deleted receiver
-- is kept (deleted_at) so its deliveries keep their history.
CREATE TABLE notification_receivers (
    id                 TEXT PRIMARY KEY,
    tenant             TEXT NOT NULL,
    name               TEXT NOT NULL,
    format             TEXT NOT NULL,
    url_sealed         TEXT NOT NULL,
    url_hint           TEXT NOT NULL,
    secret_sealed      TEXT,
    events             TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    deleted_at         BIGINT
);
CREATE INDEX notification_receivers_tenant ON notification_receivers (tenant, id);

-- The outbox: events wait here until the dispatcher fans them out to receivers. dedup_key
-- makes an event that several processes (or several sweeps) notice exist once. tenant is
-- NULL for service-wide events (circuit breakers, quality alerts). data is redacted JSON.
CREATE TABLE notification_events (
    id             TEXT PRIMARY KEY,
    dedup_key      TEXT NOT NULL UNIQUE,
    tenant         TEXT,
    kind           TEXT NOT NULL,
    data           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    dispatched_at  BIGINT
);
CREATE INDEX notification_events_due ON notification_events (dispatched_at, created_at);

-- One delivery per event and receiver (the idempotency key); job_id is its job.
CREATE TABLE notification_deliveries (
    job_id       TEXT PRIMARY KEY,
    receiver_id  TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (receiver_id, event_id)
);
CREATE INDEX notification_deliveries_tenant ON notification_deliveries (tenant, job_id);
