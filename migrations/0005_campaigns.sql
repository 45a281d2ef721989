-- Campaigns: a strict lifecycle, ordered steps, per-contact enrolments, an execution row per
-- step attempt, and the messages they produce. The original documented DRAFT → STAGED →
-- APPROVED → RUNNING but flipped SCHEDULED/ACTIVE/PAUSED, let its cron start campaigns
-- nobody approved, and queued jobs without a team id that were all rejected (DOMAIN.md C.3).

CREATE TABLE message_templates (
    id          varchar(36) PRIMARY KEY,
    team_id     varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name        text NOT NULL,
    channel     text NOT NULL CHECK (channel IN ('SMS', 'EMAIL', 'VOICE')),
    subject     text,
    body        text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, name)
);

-- A saved audience: the contact list filters as an object of strings.
CREATE TABLE saved_filters (
    id          varchar(36) PRIMARY KEY,
    team_id     varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name        text NOT NULL,
    filter      jsonb NOT NULL CHECK (jsonb_typeof(filter) = 'object'),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, name)
);

CREATE TABLE campaigns (
    id               varchar(36) PRIMARY KEY,
    team_id          varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name             text NOT NULL,
    description      text,
    status           text NOT NULL DEFAULT 'DRAFT' CHECK (status IN ('DRAFT', 'STAGED', 'APPROVED', 'RUNNING',
                         'PAUSED', 'COMPLETED', 'CANCELLED')),
    -- The author, for the four-eyes rule (a user id; null when a key created it).
    author_user_id   varchar(36),
    created_by       text NOT NULL,
    approved_by      varchar(36),
    approved_at      timestamptz,
    starts_at        timestamptz,
    ends_at          timestamptz CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at),
    -- Messages per minute this campaign may send (a 10DLC campaign's class: T 75 … A/B 4,500).
    sends_per_minute integer NOT NULL DEFAULT 75 CHECK (sends_per_minute BETWEEN 1 AND 4500),
    -- Exit rules; an opt-out always ends an enrolment and cannot be switched off.
    exit_on_reply    boolean NOT NULL DEFAULT true,
    exit_on_meeting  boolean NOT NULL DEFAULT true,
    -- The score band of the original's sync-lead-campaign: contacts whose score enters it
    -- are enrolled while the campaign runs.
    auto_min_score   integer CHECK (auto_min_score BETWEEN 0 AND 100),
    auto_max_score   integer CHECK (auto_max_score BETWEEN 0 AND 100),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((auto_min_score IS NULL) = (auto_max_score IS NULL) AND
           (auto_min_score IS NULL OR auto_min_score <= auto_max_score)),
    UNIQUE (team_id, id)
);
CREATE INDEX campaigns_team_idx ON campaigns (team_id, id);
CREATE INDEX campaigns_running_idx ON campaigns (status) WHERE status = 'RUNNING';
CREATE INDEX campaigns_starts_idx ON campaigns (starts_at) WHERE status = 'APPROVED';
CREATE INDEX campaigns_ends_idx ON campaigns (ends_at) WHERE status IN ('RUNNING', 'PAUSED');

-- The transition table, also in Rust (nextier_domain::campaign); a test checks they agree.
CREATE FUNCTION campaign_transition_allowed(p_from text, p_to text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_to = 'CANCELLED' THEN p_from NOT IN ('COMPLETED', 'CANCELLED')
                ELSE (p_from, p_to) IN (('DRAFT', 'STAGED'), ('STAGED', 'DRAFT'), ('STAGED', 'APPROVED'),
                                        ('APPROVED', 'STAGED'), ('APPROVED', 'RUNNING'), ('RUNNING', 'PAUSED'),
                                        ('PAUSED', 'RUNNING'), ('PAUSED', 'STAGED'), ('RUNNING', 'COMPLETED'),
                                        ('PAUSED', 'COMPLETED'))
           END $$;

-- The last line of defence: no statement, from any code path, can make an illegal move or
-- create a campaign in any state but DRAFT.
CREATE FUNCTION campaigns_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'DRAFT' THEN
            RAISE EXCEPTION 'a campaign is created as DRAFT, not %', NEW.status USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT campaign_transition_allowed(OLD.status, NEW.status) THEN
            RAISE EXCEPTION 'a campaign cannot move from % to %', OLD.status, NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.status = 'RUNNING' AND OLD.status = 'APPROVED' AND NEW.approved_at IS NULL THEN
            RAISE EXCEPTION 'a campaign cannot run without an approval' USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER campaigns_guard BEFORE INSERT OR UPDATE ON campaigns FOR EACH ROW EXECUTE FUNCTION campaigns_guard();

CREATE TABLE campaign_state_changes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id      varchar(36) NOT NULL,
    campaign_id  varchar(36) NOT NULL,
    from_status  text NOT NULL,
    to_status    text NOT NULL,
    actor        text NOT NULL,
    reason       text,
    at           timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (team_id, campaign_id) REFERENCES campaigns (team_id, id) ON DELETE CASCADE
);
CREATE INDEX campaign_state_changes_idx ON campaign_state_changes (campaign_id, id);

CREATE TABLE campaign_steps (
    id           varchar(36) PRIMARY KEY,
    team_id      varchar(36) NOT NULL,
    campaign_id  varchar(36) NOT NULL,
    position     integer NOT NULL CHECK (position >= 1),
    channel      text NOT NULL CHECK (channel IN ('SMS', 'EMAIL', 'VOICE')),
    delay_unit   text NOT NULL CHECK (delay_unit IN ('minutes', 'hours', 'days', 'business_days')),
    delay_amount integer NOT NULL CHECK (delay_amount BETWEEN 0 AND 100000),
    subject      text,
    body         text NOT NULL,
    template_id  varchar(36),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (channel <> 'EMAIL' OR subject IS NOT NULL),
    -- Deferred, so a reorder can shift positions within one statement.
    UNIQUE (campaign_id, position) DEFERRABLE INITIALLY DEFERRED,
    FOREIGN KEY (team_id, campaign_id) REFERENCES campaigns (team_id, id) ON DELETE CASCADE
);

CREATE TABLE campaign_enrolments (
    id            varchar(36) PRIMARY KEY,
    team_id       varchar(36) NOT NULL,
    campaign_id   varchar(36) NOT NULL,
    contact_id    varchar(36) NOT NULL,
    status        text NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'completed', 'exited', 'failed', 'removed')),
    -- Whether this enrolment excludes the contact from every other live campaign of the team
    -- (false only when the team allows overlapping enrolments).
    exclusive     boolean NOT NULL DEFAULT true,
    current_step  integer NOT NULL DEFAULT 1 CHECK (current_step >= 1),
    -- When the current step is due; null until the campaign runs.
    next_run_at   timestamptz,
    -- Set by the tick while a message for the current step is on the queue; a lease, so a
    -- message lost between claim and queue is claimed again once it lapses.
    claimed_until timestamptz,
    claims        integer NOT NULL DEFAULT 0,
    last_run_at   timestamptz,
    exit_reason   text,
    enrolled_by   text NOT NULL,
    enrolled_at   timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, contact_id),
    FOREIGN KEY (team_id, campaign_id) REFERENCES campaigns (team_id, id) ON DELETE CASCADE,
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);
-- One live exclusive enrolment per contact per team, race-free.
CREATE UNIQUE INDEX campaign_enrolments_exclusive_idx ON campaign_enrolments (team_id, contact_id)
    WHERE status = 'active' AND exclusive;
-- The tick's scan: due, unclaimed enrolments of one campaign in time order. Claimed rows
-- leave this index, so each claim starts at the first unclaimed row instead of skipping the
-- ones claimed before it.
CREATE INDEX campaign_enrolments_due_idx ON campaign_enrolments (campaign_id, next_run_at)
    WHERE status = 'active' AND claimed_until IS NULL;
CREATE INDEX campaign_enrolments_claimed_idx ON campaign_enrolments (campaign_id, claimed_until)
    WHERE status = 'active' AND claimed_until IS NOT NULL;
CREATE INDEX campaign_enrolments_contact_idx ON campaign_enrolments (contact_id);

-- Messages, outbound and (later) inbound. `send_key` makes a send happen once per
-- (enrolment, step) however often its queue message is delivered.
CREATE TABLE messages (
    id                  varchar(36) PRIMARY KEY,
    team_id             varchar(36) NOT NULL,
    contact_id          varchar(36),
    campaign_id         varchar(36),
    step_id             varchar(36),
    enrolment_id        varchar(36),
    channel             text NOT NULL CHECK (channel IN ('SMS', 'EMAIL', 'VOICE')),
    direction           text NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    to_address          text NOT NULL,
    from_address        text,
    subject             text,
    body                text NOT NULL,
    status              text NOT NULL CHECK (status IN ('queued', 'sent', 'delivered', 'failed', 'received')),
    provider            text NOT NULL,
    provider_message_id text,
    send_key            text,
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    delivered_at        timestamptz,
    UNIQUE (team_id, send_key),
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE SET NULL (contact_id)
);
CREATE INDEX messages_contact_idx ON messages (contact_id, created_at);
CREATE INDEX messages_step_idx ON messages (step_id) WHERE step_id IS NOT NULL;

CREATE TABLE campaign_executions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id       varchar(36) NOT NULL,
    campaign_id   varchar(36) NOT NULL,
    enrolment_id  varchar(36) NOT NULL REFERENCES campaign_enrolments(id) ON DELETE CASCADE,
    step_id       varchar(36),
    step_position integer NOT NULL,
    attempt       integer NOT NULL DEFAULT 1,
    status        text NOT NULL CHECK (status IN ('sent', 'deferred', 'blocked', 'failed', 'skipped')),
    reason        text,
    message_id    varchar(36),
    at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (enrolment_id, step_position, attempt),
    FOREIGN KEY (team_id, campaign_id) REFERENCES campaigns (team_id, id) ON DELETE CASCADE
);
CREATE INDEX campaign_executions_step_idx ON campaign_executions (campaign_id, step_position, status);

SELECT make_tenant_table(t) FROM unnest(ARRAY['message_templates', 'saved_filters', 'campaigns',
    'campaign_state_changes', 'campaign_steps', 'campaign_enrolments', 'messages', 'campaign_executions']::regclass[]) AS t;

-- Cross-tenant work of the schedulers --------------------------------------------------
-- The tick and the starter serve every team at once, so they are the two vetted places that
-- read across tenants; they return team ids and every follow-up runs scoped to that team.

-- Claims due enrolments of running campaigns, oldest first, without waiting for rows another
-- tick holds. Backpressure: each campaign gets at most its per-minute rate minus what it
-- already has in flight, and all campaigns together at most `p_budget` minus everything in
-- flight; `p_limit` bounds one call, so a tick claims in chunks. Candidates are read without
-- locks (at most `p_limit` per campaign) and only the chosen ones are locked, skipping any a
-- concurrent tick holds. Lapsed leases (a claim whose message was lost) are claimable again.
CREATE FUNCTION campaign_claim_due(p_now timestamptz, p_budget integer, p_limit integer, p_lease interval)
RETURNS TABLE (enrolment_id text, team_id text, campaign_id text, contact_id text, step integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE v_room integer;
BEGIN
    SELECT p_budget - count(*) INTO v_room FROM campaign_enrolments f
     WHERE f.status = 'active' AND f.claimed_until > p_now;
    v_room := least(v_room, p_limit);
    IF v_room <= 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH running AS (
        SELECT c.id, least(v_room, greatest(c.sends_per_minute - (
                   SELECT count(*) FROM campaign_enrolments f
                    WHERE f.campaign_id = c.id AND f.status = 'active' AND f.claimed_until > p_now), 0))::integer AS room
          FROM campaigns c WHERE c.status = 'RUNNING'),
    candidates AS (
        SELECT x.id, x.next_run_at FROM running r
        CROSS JOIN LATERAL (
            (SELECT e.id, e.next_run_at FROM campaign_enrolments e
              WHERE e.campaign_id = r.id AND e.status = 'active' AND e.claimed_until IS NULL
                AND e.next_run_at <= p_now
              ORDER BY e.next_run_at LIMIT r.room)
            UNION ALL
            (SELECT e.id, e.next_run_at FROM campaign_enrolments e
              WHERE e.campaign_id = r.id AND e.status = 'active' AND e.claimed_until <= p_now
                AND e.next_run_at <= p_now
              ORDER BY e.claimed_until LIMIT r.room)) x
         WHERE r.room > 0),
    picked AS (
        SELECT e.id FROM campaign_enrolments e
         WHERE e.id IN (SELECT cd.id FROM candidates cd ORDER BY cd.next_run_at LIMIT v_room)
           AND e.status = 'active' AND (e.claimed_until IS NULL OR e.claimed_until <= p_now)
         FOR UPDATE OF e SKIP LOCKED)
    UPDATE campaign_enrolments e SET claimed_until = p_now + p_lease, claims = e.claims + 1
      FROM picked WHERE e.id = picked.id
    RETURNING e.id::text, e.team_id::text, e.campaign_id::text, e.contact_id::text, e.current_step;
END $$;

-- Gives back claims whose queue message could not be sent, so the next tick retries them.
CREATE FUNCTION campaign_release_claims(p_ids text[]) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH released AS (UPDATE campaign_enrolments SET claimed_until = NULL
                       WHERE id = ANY(p_ids) AND status = 'active' RETURNING 1)
    SELECT count(*)::integer FROM released
$$;

-- Campaigns whose scheduled start or end has come.
CREATE FUNCTION campaign_due_schedules(p_now timestamptz)
RETURNS TABLE (team_id text, campaign_id text, action text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.team_id::text, c.id::text, 'start' FROM campaigns c WHERE c.status = 'APPROVED' AND c.starts_at <= p_now
    UNION ALL
    SELECT c.team_id::text, c.id::text, 'complete' FROM campaigns c
     WHERE c.status IN ('RUNNING', 'PAUSED') AND c.ends_at <= p_now
$$;

REVOKE ALL ON FUNCTION campaign_claim_due(timestamptz, integer, integer, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION campaign_due_schedules(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION campaign_release_claims(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION campaign_release_claims(text[]) TO nextier_app;
GRANT EXECUTE ON FUNCTION campaign_claim_due(timestamptz, integer, integer, interval) TO nextier_app;
GRANT EXECUTE ON FUNCTION campaign_due_schedules(timestamptz) TO nextier_app;
