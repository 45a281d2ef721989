-- Integrations out (issue 19): a CRM connection per team (Zoho), its field mapping, the link
-- of each contact to its CRM record, every task and every conflict; CSV exports; and the
-- endpoints a team registers for signed webhooks, with every delivery and attempt.

-- When a person (or a team's key) last edited a contact's fields through the API: the CRM pull
-- keeps such an edit over an older CRM change.
ALTER TABLE contacts ADD COLUMN edited_at timestamptz;
-- The push reads each team's contacts in the order they changed.
CREATE INDEX contacts_changed_idx ON contacts (team_id, updated_at, id);

CREATE TABLE integrations (
    id                varchar(36) PRIMARY KEY,
    team_id           varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    provider          text NOT NULL CHECK (provider IN ('zoho')),
    status            text NOT NULL CHECK (status IN ('connected', 'needs_reconnect', 'disconnected')),
    status_reason     text,
    -- The data centre the person signed in at, and the API domain its token answer named.
    accounts_server   text NOT NULL,
    api_domain        text,
    access_expires_at timestamptz,
    refreshed_at      timestamptz,
    -- Which modules sync and in which directions.
    modules           text[] NOT NULL DEFAULT '{Leads}',
    push_enabled      boolean NOT NULL DEFAULT true,
    pull_enabled      boolean NOT NULL DEFAULT true,
    -- Contacts changed after (push_after_at, push_after_id) are still to push.
    push_after_at     timestamptz NOT NULL DEFAULT '1970-01-01T00:00:00Z',
    push_after_id     text NOT NULL DEFAULT '',
    -- Per module, the newest Modified_Time pulled: {"Leads": "2026-..."}.
    pull_cursor       jsonb NOT NULL DEFAULT '{}',
    pulled_at         timestamptz,
    connected_by      text NOT NULL,
    connected_at      timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, provider),
    UNIQUE (team_id, id)
);

-- The tokens: never readable by the API role (it stores them through
-- integration_store_tokens); the integration worker reads and refreshes them.
CREATE TABLE integration_secrets (
    integration_id varchar(36) PRIMARY KEY,
    team_id        varchar(36) NOT NULL,
    refresh_token  text NOT NULL,
    access_token   text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (team_id, integration_id) REFERENCES integrations (team_id, id) ON DELETE CASCADE
);
ALTER TABLE integration_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE integration_secrets FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_maintenance ON integration_secrets FOR ALL TO nextier_owner USING (true) WITH CHECK (true);
CREATE POLICY worker_only ON integration_secrets FOR ALL TO nextier_worker
    USING (team_id = app_team_id()) WITH CHECK (team_id = app_team_id());
REVOKE ALL ON integration_secrets FROM PUBLIC, nextier_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON integration_secrets TO nextier_worker;

-- A connect in progress: the state handed to the CRM (its SHA-256 here), single use, for the
-- person who asked, for ten minutes.
CREATE TABLE oauth_states (
    state_hash   text PRIMARY KEY,
    team_id      varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    provider     text NOT NULL,
    actor        text NOT NULL,
    redirect_uri text NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE integration_fields (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id     varchar(36) NOT NULL,
    integration_id varchar(36) NOT NULL,
    module      text NOT NULL,
    source      text NOT NULL,
    target      text NOT NULL,
    UNIQUE (integration_id, module, source),
    UNIQUE (integration_id, module, target),
    FOREIGN KEY (team_id, integration_id) REFERENCES integrations (team_id, id) ON DELETE CASCADE
);

-- A contact's record in the CRM, per module.
CREATE TABLE integration_links (
    team_id        varchar(36) NOT NULL,
    integration_id varchar(36) NOT NULL,
    module         text NOT NULL,
    contact_id     varchar(36) NOT NULL,
    external_id    text NOT NULL,
    state          text NOT NULL DEFAULT 'linked' CHECK (state IN ('linked', 'remote_deleted', 'local_deleted')),
    -- What was last pushed (a hash of the mapped record), so an unchanged contact is not sent.
    pushed_hash    text,
    pushed_at      timestamptz,
    remote_modified_at timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, module, contact_id),
    UNIQUE (integration_id, module, external_id),
    FOREIGN KEY (team_id, integration_id) REFERENCES integrations (team_id, id) ON DELETE CASCADE,
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);

CREATE TABLE integration_tasks (
    id             varchar(36) PRIMARY KEY,
    team_id        varchar(36) NOT NULL,
    integration_id varchar(36) NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('push', 'pull')),
    status         text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    payload        jsonb NOT NULL DEFAULT '{}',
    result         jsonb NOT NULL DEFAULT '{}',
    attempts       integer NOT NULL DEFAULT 0,
    error          text,
    lease_until    timestamptz,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    UNIQUE (team_id, id),
    FOREIGN KEY (team_id, integration_id) REFERENCES integrations (team_id, id) ON DELETE CASCADE
);
CREATE INDEX integration_tasks_list_idx ON integration_tasks (integration_id, created_at DESC);

CREATE TABLE integration_conflicts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id        varchar(36) NOT NULL,
    integration_id varchar(36) NOT NULL,
    contact_id     varchar(36),
    module         text NOT NULL,
    external_id    text NOT NULL,
    -- `field` (ours kept over theirs), `remote_deleted`, `local_deleted`.
    kind           text NOT NULL,
    field          text,
    ours           text,
    theirs         text,
    our_edited_at  timestamptz,
    their_modified_at timestamptz,
    resolution     text NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (team_id, integration_id) REFERENCES integrations (team_id, id) ON DELETE CASCADE
);
CREATE INDEX integration_conflicts_idx ON integration_conflicts (integration_id, id DESC);

CREATE TABLE exports (
    id           varchar(36) PRIMARY KEY,
    team_id      varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('contacts', 'inbox', 'messages')),
    filter       jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    rows_written bigint NOT NULL DEFAULT 0,
    rows_total   bigint,
    bytes        bigint NOT NULL DEFAULT 0,
    blob_key     text,
    error        text,
    attempts     integer NOT NULL DEFAULT 0,
    lease_until  timestamptz,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    UNIQUE (team_id, id)
);
CREATE INDEX exports_team_idx ON exports (team_id, created_at DESC);

CREATE TABLE webhook_endpoints (
    id            varchar(36) PRIMARY KEY,
    team_id       varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    url           text NOT NULL CHECK (char_length(url) <= 2000),
    description   text,
    event_types   text[] NOT NULL CHECK (cardinality(event_types) > 0),
    -- `whsec_` + base64; during a rotation the previous secret signs too, until it expires.
    secret        text NOT NULL,
    previous_secret text,
    previous_expires_at timestamptz,
    active        boolean NOT NULL DEFAULT true,
    disabled_reason text,
    disabled_at   timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    -- The first failure of the current run of failures.
    failing_since timestamptz,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, id)
);

CREATE TABLE webhook_deliveries (
    id            varchar(36) PRIMARY KEY,
    team_id       varchar(36) NOT NULL,
    endpoint_id   varchar(36) NOT NULL,
    -- The event (its outbox id): one delivery per endpoint and event, however often it arrives.
    event_id      text NOT NULL,
    event_type    text NOT NULL,
    payload       jsonb NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'cancelled')),
    attempts      integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    lease_until   timestamptz,
    last_status   integer,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, event_id),
    UNIQUE (team_id, id),
    FOREIGN KEY (team_id, endpoint_id) REFERENCES webhook_endpoints (team_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC);

CREATE TABLE webhook_attempts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id       varchar(36) NOT NULL,
    delivery_id   varchar(36) NOT NULL,
    status_code   integer,
    error         text,
    duration_ms   integer NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (team_id, delivery_id) REFERENCES webhook_deliveries (team_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

SELECT make_tenant_table(t) FROM unnest(ARRAY['integrations', 'oauth_states', 'integration_fields',
    'integration_links', 'integration_tasks', 'integration_conflicts', 'exports', 'webhook_endpoints',
    'webhook_deliveries', 'webhook_attempts']::regclass[]) AS t;

-- The API stores a connection's tokens, for its own team only, without being able to read them.
CREATE FUNCTION integration_store_tokens(p_integration text, p_refresh text, p_access text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE t text;
BEGIN
    SELECT team_id INTO t FROM integrations WHERE id = p_integration;
    IF t IS NULL OR t <> app_team_id() THEN
        RAISE EXCEPTION 'no such integration' USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO integration_secrets (integration_id, team_id, refresh_token, access_token)
    VALUES (p_integration, t, p_refresh, p_access)
    ON CONFLICT (integration_id) DO UPDATE
       SET refresh_token = excluded.refresh_token, access_token = excluded.access_token, updated_at = now();
END $$;
REVOKE ALL ON FUNCTION integration_store_tokens(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION integration_store_tokens(text, text, text) TO nextier_app;

-- The cron's view across teams (the worker's only).
CREATE FUNCTION integrations_connected()
RETURNS TABLE (id text, team_id text, access_expires_at timestamptz, pulled_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT i.id::text, i.team_id::text, i.access_expires_at, i.pulled_at FROM integrations i
     WHERE i.status = 'connected' ORDER BY i.id
$$;
REVOKE ALL ON FUNCTION integrations_connected() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION integrations_connected() TO nextier_worker;

CREATE FUNCTION webhook_deliveries_due(p_now timestamptz, p_limit integer)
RETURNS TABLE (id text, team_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT d.id::text, d.team_id::text FROM webhook_deliveries d
     WHERE (d.status = 'pending' AND d.next_attempt_at <= p_now)
        OR (d.status = 'sending' AND d.lease_until <= p_now)
     ORDER BY d.next_attempt_at LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION webhook_deliveries_due(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_deliveries_due(timestamptz, integer) TO nextier_worker;

-- Queued or leased work whose message was lost (a crash between commit and send): the cron
-- sends it again.
CREATE FUNCTION integration_work_stalled(p_now timestamptz, p_limit integer)
RETURNS TABLE (kind text, id text, team_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    (SELECT 'task', t.id::text, t.team_id::text FROM integration_tasks t
      WHERE (t.status = 'queued' AND t.created_at <= p_now - interval '15 minutes'
             AND coalesce(t.lease_until, '-infinity') <= p_now)
         OR (t.status = 'running' AND t.lease_until <= p_now)
      LIMIT p_limit)
    UNION ALL
    (SELECT 'export', e.id::text, e.team_id::text FROM exports e
      WHERE (e.status = 'queued' AND e.created_at <= p_now - interval '15 minutes'
             AND coalesce(e.lease_until, '-infinity') <= p_now)
         OR (e.status = 'running' AND e.lease_until <= p_now)
      LIMIT p_limit)
$$;
REVOKE ALL ON FUNCTION integration_work_stalled(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION integration_work_stalled(timestamptz, integer) TO nextier_worker;

-- Disconnecting forgets the tokens (the API cannot touch the secrets table itself).
CREATE FUNCTION integration_forget_tokens(p_integration text)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DELETE FROM integration_secrets WHERE integration_id = p_integration AND team_id = app_team_id()
$$;
REVOKE ALL ON FUNCTION integration_forget_tokens(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION integration_forget_tokens(text) TO nextier_app;
