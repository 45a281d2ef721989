-- Skip traces: a bulk request to the skip-trace provider for some of a team's contacts, and
-- its completion webhook. The provider does not sign its callbacks, so each job's callback URL
-- carries a random token (stored hashed) that only that job's callback knows.
CREATE TABLE skip_trace_jobs (
    id              varchar(36) PRIMARY KEY,
    team_id         varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    provider        text NOT NULL,
    provider_job_id text,
    token_hash      text NOT NULL UNIQUE,
    status          text NOT NULL DEFAULT 'requesting'
                    CHECK (status IN ('requesting', 'requested', 'completed', 'failed')),
    contact_ids     text[] NOT NULL CHECK (cardinality(contact_ids) BETWEEN 1 AND 1000),
    requested_by    text NOT NULL,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    error           text,
    summary         jsonb,
    UNIQUE (team_id, id)
);
SELECT make_tenant_table('skip_trace_jobs');

-- The callback knows only its token: which job, of which team?
CREATE FUNCTION skip_trace_job_for_token(p_hash text) RETURNS TABLE (job_id text, team_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT id::text, team_id::text FROM skip_trace_jobs WHERE token_hash = p_hash
$$;
REVOKE ALL ON FUNCTION skip_trace_job_for_token(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION skip_trace_job_for_token(text) TO nextier_app;
