-- Workflows (issue 18): per team, a trigger, conditions on the contact and ordered actions.
-- Each (workflow, event, contact) runs once (workflow_runs' unique key); every step is recorded;
-- a wait leaves the run `waiting` until the timer wakes it.

CREATE TABLE workflows (
    id             varchar(36) PRIMARY KEY,
    team_id        varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    trigger        jsonb NOT NULL CHECK (jsonb_typeof(trigger) = 'object'),
    -- The bus event that starts it (NULL: the timer finds it, as for "no reply in N days").
    trigger_event  text,
    conditions     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(conditions) = 'object'),
    actions        jsonb NOT NULL CHECK (jsonb_typeof(actions) = 'array'),
    active         boolean NOT NULL DEFAULT true,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, name),
    UNIQUE (team_id, id)
);
CREATE INDEX workflows_event_idx ON workflows (team_id, trigger_event) WHERE active;

CREATE TABLE workflow_runs (
    id           varchar(36) PRIMARY KEY,
    team_id      varchar(36) NOT NULL,
    workflow_id  varchar(36) NOT NULL,
    -- The event (its outbox id, or the timer's key) and the contact: once per workflow.
    event_key    text NOT NULL,
    contact_id   varchar(36) NOT NULL,
    event        jsonb NOT NULL,
    -- The workflows whose actions led to this event, oldest first (loop detection).
    chain        text[] NOT NULL DEFAULT '{}',
    status       text NOT NULL CHECK (status IN ('running', 'waiting', 'done', 'failed', 'stopped')),
    next_action  integer NOT NULL DEFAULT 0,
    wake_at      timestamptz,
    note         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow_id, event_key),
    UNIQUE (team_id, id),
    FOREIGN KEY (team_id, workflow_id) REFERENCES workflows (team_id, id) ON DELETE CASCADE
);
CREATE INDEX workflow_runs_wake_idx ON workflow_runs (wake_at) WHERE status = 'waiting';
CREATE INDEX workflow_runs_workflow_idx ON workflow_runs (workflow_id, created_at DESC);

CREATE TABLE workflow_run_steps (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id   varchar(36) NOT NULL,
    run_id    varchar(36) NOT NULL,
    idx       integer NOT NULL,
    action    text NOT NULL,
    status    text NOT NULL CHECK (status IN ('done', 'skipped', 'failed', 'waiting')),
    detail    text,
    at        timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (team_id, run_id) REFERENCES workflow_runs (team_id, id) ON DELETE CASCADE
);
CREATE INDEX workflow_run_steps_run_idx ON workflow_run_steps (run_id, id);

SELECT make_tenant_table(t) FROM unnest(ARRAY['workflows', 'workflow_runs', 'workflow_run_steps']::regclass[]) AS t;

-- The timer (the worker's only): waiting runs due at `at`, and the "no reply" workflows, of
-- every team.
CREATE FUNCTION workflow_runs_due(at timestamptz, lim integer)
RETURNS TABLE (id text, team_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.id::text, r.team_id::text FROM workflow_runs r
     WHERE r.status = 'waiting' AND r.wake_at <= at ORDER BY r.wake_at LIMIT lim
$$;
REVOKE ALL ON FUNCTION workflow_runs_due(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow_runs_due(timestamptz, integer) TO nextier_worker;

CREATE FUNCTION workflows_timed()
RETURNS TABLE (id text, team_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT w.id::text, w.team_id::text FROM workflows w WHERE w.active AND w.trigger_event IS NULL
$$;
REVOKE ALL ON FUNCTION workflows_timed() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflows_timed() TO nextier_worker;
