-- Transactional outbox: a row written in the same transaction as the change it announces,
-- published to a queue or the event bus right after commit; a sweeper publishes any row
-- left behind (crash between commit and publish, transient AWS error).
--
-- This is a transport table, not tenant data the API serves: it has no RLS so the sweeper
-- can drain every team's rows, and no API route reads it.

CREATE TABLE outbox (
    id              varchar(36) PRIMARY KEY,
    team_id         varchar(36),
    kind            text NOT NULL CHECK (kind IN ('queue', 'event')),
    destination     text NOT NULL,          -- queue name or event detail-type
    payload         jsonb NOT NULL,
    correlation_id  text NOT NULL,
    dedupe_key      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    available_at    timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    published_at    timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (available_at) WHERE published_at IS NULL;
-- A producer may name a dedupe key so that retrying the same request stages one row only.
CREATE UNIQUE INDEX outbox_dedupe_idx ON outbox (dedupe_key) WHERE dedupe_key IS NOT NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO nextier_app;
