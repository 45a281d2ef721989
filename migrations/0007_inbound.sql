-- Inbound: webhook deliveries as received, replies as messages, and the inbox that works them
-- (buckets with SLAs, items, and every move between buckets).

-- A webhook delivery before it belongs to a team: the provider's delivery id is unique, so
-- a retried or duplicated delivery is stored (and enqueued) once. Not a tenant table: the
-- team is known only once the consumer has routed it (team_id is then filled in).
CREATE TABLE webhook_events (
    id           varchar(36) PRIMARY KEY,
    provider     text NOT NULL,
    delivery_id  text NOT NULL,
    event        text NOT NULL,
    payload      jsonb NOT NULL,
    -- The signed timestamp (SignalHouse), when there was one.
    signed_at    timestamptz,
    received_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- webhook (pushed to us) or reconcile (read back from GET /notification).
    source       text NOT NULL DEFAULT 'webhook' CHECK (source IN ('webhook', 'reconcile')),
    team_id      varchar(36),
    processed_at timestamptz,
    outcome      text,
    UNIQUE (provider, delivery_id)
);
CREATE INDEX webhook_events_unprocessed_idx ON webhook_events (received_at) WHERE processed_at IS NULL;
-- Unrouted deliveries are anyone's to route; once routed, a delivery (with the numbers and
-- text it carries) is visible to its team only.
ALTER TABLE webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_events FORCE ROW LEVEL SECURITY;
CREATE POLICY routing ON webhook_events FOR ALL TO nextier_app
    USING (team_id IS NULL OR team_id = app_team_id()) WITH CHECK (team_id IS NULL OR team_id = app_team_id());
CREATE POLICY owner_maintenance ON webhook_events FOR ALL TO nextier_owner USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE ON webhook_events TO nextier_app;

-- A provider's message id identifies one inbound message: the same reply reaching us twice
-- (a retried delivery under a new delivery id, or a reconcile) is recorded once.
CREATE UNIQUE INDEX messages_inbound_provider_idx ON messages (team_id, provider, provider_message_id)
    WHERE direction = 'inbound' AND provider_message_id IS NOT NULL;
CREATE INDEX messages_provider_id_idx ON messages (provider_message_id) WHERE provider_message_id IS NOT NULL;

-- A delivery receipt names only the provider's message id: whose message is it?
CREATE FUNCTION team_for_provider_message(p_provider text, p_id text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT team_id::text FROM messages
     WHERE provider_message_id = p_id AND provider = p_provider AND direction = 'outbound' LIMIT 1
$$;
REVOKE ALL ON FUNCTION team_for_provider_message(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION team_for_provider_message(text, text) TO nextier_app;

-- Buckets: one row per team and type, seeded when the team is created.
CREATE TABLE inbox_buckets (
    team_id     varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    type        text NOT NULL CHECK (type IN ('UNIVERSAL_INBOX', 'POSITIVE_RESPONSES', 'NEUTRAL_REVIEW', 'WRONG_NUMBER',
                                              'PROFANITY_REVIEW', 'BLACKLIST', 'LEGAL_DNC', 'FOLLOW_UP')),
    name        text NOT NULL,
    position    integer NOT NULL,
    -- Minutes an item may wait before it is escalated; NULL: no SLA.
    sla_minutes integer CHECK (sla_minutes > 0),
    PRIMARY KEY (team_id, type)
);

CREATE TABLE inbox_items (
    id               varchar(36) PRIMARY KEY,
    team_id          varchar(36) NOT NULL,
    contact_id       varchar(36) NOT NULL,
    message_id       varchar(36) NOT NULL,
    campaign_id      varchar(36),
    phone            text NOT NULL,
    response_text    text NOT NULL,
    classification   text NOT NULL CHECK (classification IN ('POSITIVE', 'QUESTION', 'NEUTRAL', 'NEGATIVE', 'WRONG_NUMBER',
                                                             'PROFANITY', 'DNC_REQUEST', 'HELP', 'OPT_IN')),
    confidence       integer NOT NULL CHECK (confidence BETWEEN 0 AND 100),
    labels           text[] NOT NULL DEFAULT '{}',
    priority         text NOT NULL CHECK (priority IN ('URGENT', 'HOT', 'WARM', 'COLD')),
    score            integer NOT NULL CHECK (score BETWEEN 0 AND 100),
    bucket           text NOT NULL,
    requires_review  boolean NOT NULL,
    is_read          boolean NOT NULL DEFAULT false,
    assigned_to      text,
    due_at           timestamptz,
    escalated_at     timestamptz,
    escalation_level integer NOT NULL DEFAULT 0,
    processed_at     timestamptz,
    processed_by     text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (team_id, message_id),
    FOREIGN KEY (team_id, bucket) REFERENCES inbox_buckets (team_id, type),
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);
CREATE INDEX inbox_items_bucket_idx ON inbox_items (team_id, bucket, id) WHERE processed_at IS NULL;
CREATE INDEX inbox_items_due_idx ON inbox_items (due_at) WHERE processed_at IS NULL AND due_at IS NOT NULL;
CREATE INDEX inbox_items_contact_idx ON inbox_items (contact_id, id);

CREATE TABLE bucket_movements (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id       varchar(36) NOT NULL,
    inbox_item_id varchar(36) NOT NULL REFERENCES inbox_items(id) ON DELETE CASCADE,
    from_bucket   text,
    to_bucket     text NOT NULL,
    moved_by      text NOT NULL,
    reason        text,
    at            timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX bucket_movements_item_idx ON bucket_movements (inbox_item_id, id);

SELECT make_tenant_table(t) FROM unnest(ARRAY['inbox_buckets', 'inbox_items', 'bucket_movements']::regclass[]) AS t;

-- The default buckets (positions 0-7). The hot-lead SLA is five minutes.
CREATE FUNCTION seed_inbox_buckets(p_team text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO inbox_buckets (team_id, type, name, position, sla_minutes) VALUES
        (p_team, 'UNIVERSAL_INBOX', 'Inbox', 0, 60),
        (p_team, 'POSITIVE_RESPONSES', 'Positive responses', 1, 5),
        (p_team, 'NEUTRAL_REVIEW', 'Needs review', 2, 240),
        (p_team, 'WRONG_NUMBER', 'Wrong number', 3, 1440),
        (p_team, 'PROFANITY_REVIEW', 'Profanity', 4, 1440),
        (p_team, 'BLACKLIST', 'Blacklist', 5, NULL),
        (p_team, 'LEGAL_DNC', 'Do not contact', 6, NULL),
        (p_team, 'FOLLOW_UP', 'Follow up', 7, 1440)
    ON CONFLICT DO NOTHING
$$;
REVOKE ALL ON FUNCTION seed_inbox_buckets(text) FROM PUBLIC;

CREATE FUNCTION teams_seed_inbox() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM seed_inbox_buckets(NEW.id);
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION teams_seed_inbox() FROM PUBLIC;
CREATE TRIGGER teams_seed_inbox AFTER INSERT ON teams FOR EACH ROW EXECUTE FUNCTION teams_seed_inbox();
SELECT seed_inbox_buckets(id) FROM teams;

-- The SLA sweep, across teams: items past their due time that are not processed, escalated
-- once per SLA period up to level 3. Returns what it escalated.
CREATE FUNCTION inbox_escalate_due(p_now timestamptz, p_limit integer)
RETURNS TABLE (item_id text, team_id text, contact_id text, bucket text, level integer, due_at timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH due AS (
        SELECT i.id FROM inbox_items i JOIN inbox_buckets b ON b.team_id = i.team_id AND b.type = i.bucket
         WHERE i.processed_at IS NULL AND i.due_at <= p_now AND i.escalation_level < 3
           AND b.sla_minutes IS NOT NULL
           AND (i.escalated_at IS NULL OR i.escalated_at <= p_now - make_interval(mins => b.sla_minutes))
         ORDER BY i.due_at LIMIT p_limit FOR UPDATE OF i SKIP LOCKED)
    UPDATE inbox_items i SET escalated_at = p_now, escalation_level = i.escalation_level + 1
      FROM due WHERE i.id = due.id
    RETURNING i.id::text, i.team_id::text, i.contact_id::text, i.bucket, i.escalation_level, i.due_at
$$;
REVOKE ALL ON FUNCTION inbox_escalate_due(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION inbox_escalate_due(timestamptz, integer) TO nextier_app;
