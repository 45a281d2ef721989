-- The local runtime's rate limiter: the same buckets as the DynamoDB table, in Postgres.
CREATE TABLE local_rate_buckets (
    key         text PRIMARY KEY,
    -- GCRA theoretical arrival time (µs) or a quota's count; NULL: never used.
    value       bigint,
    expires_at  timestamptz
);
GRANT SELECT, INSERT, UPDATE, DELETE ON local_rate_buckets TO nextier_app;
