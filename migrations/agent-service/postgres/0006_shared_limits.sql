-- Limits that hold across every replica on this database.
--
-- A tenant's daily budget: `tenant_usage` keeps what the day's runs have spent and, beside
-- it, what runs still in flight have reserved; a run reserves before it starts (a
-- conditional update that refuses when spent + reserved would pass the budget) and settles
-- when it ends (the reservation released, the real usage added). Each reservation is also
-- a row of its own, so one left by a process that died is found once it expires and
-- charged in full.
--
-- The per-key rate limit: one row per API key holding its theoretical arrival time (GCRA),
-- in nanoseconds since the Unix epoch, advanced by one conditional upsert per request.

ALTER TABLE tenant_usage ADD COLUMN reserved_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenant_usage ADD COLUMN reserved_cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0;

CREATE TABLE budget_reservations (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    day         TEXT NOT NULL,
    tokens      BIGINT NOT NULL,
    cost_usd    DOUBLE PRECISION NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX budget_reservations_expiry ON budget_reservations (expires_at);

-- Unlogged: the rate limit's state is not worth a WAL flush per request (an admitted
-- request's commit would otherwise wait for the disk). After a crash of the database
-- server the table is empty again, which only gives every key a full minute's burst.
CREATE UNLOGGED TABLE rate_limits (
    key_id  TEXT PRIMARY KEY,
    tat_ns  BIGINT NOT NULL
);
