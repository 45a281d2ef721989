-- AI workers (issue 16): digital SDRs as configuration. A worker is a team's row (persona,
-- tone, goal, FAQs, active hours, delay, caps, auto-send policy); the numbers it owns route
-- replies to it; every routing decision is kept with its reason; every AI-written message
-- keeps the worker, the prompt version and, when it went out without a person, the policy
-- version that allowed it.

CREATE TABLE ai_workers (
    id              varchar(36) PRIMARY KEY,
    team_id         varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    key             text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_-]{0,39}$'),
    name            text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 60),
    role            text NOT NULL CHECK (role IN ('opener', 'nurture', 'closer', 'research')),
    persona         text NOT NULL DEFAULT '' CHECK (char_length(persona) <= 2000),
    tone            text NOT NULL DEFAULT '' CHECK (char_length(tone) <= 200),
    goal            text NOT NULL DEFAULT '' CHECK (char_length(goal) <= 500),
    industry        text NOT NULL DEFAULT '' CHECK (char_length(industry) <= 100),
    faqs            jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(faqs) = 'array'),
    sign_off        text NOT NULL DEFAULT '' CHECK (char_length(sign_off) <= 60),
    -- Minutes after midnight in the team's zone (`ai` / `time_zone`), and ISO weekdays.
    active_from     smallint NOT NULL DEFAULT 540 CHECK (active_from BETWEEN 0 AND 1440),
    active_until    smallint NOT NULL DEFAULT 1140 CHECK (active_until BETWEEN 0 AND 1440),
    active_days     smallint[] NOT NULL DEFAULT '{1,2,3,4,5}' CHECK (active_days <@ '{1,2,3,4,5,6,7}'),
    delay_min_secs  integer NOT NULL DEFAULT 60 CHECK (delay_min_secs BETWEEN 0 AND 86400),
    delay_max_secs  integer NOT NULL DEFAULT 300 CHECK (delay_max_secs BETWEEN delay_min_secs AND 86400),
    daily_cap       integer NOT NULL DEFAULT 200 CHECK (daily_cap BETWEEN 0 AND 100000),
    per_lead_cap    integer NOT NULL DEFAULT 3 CHECK (per_lead_cap BETWEEN 0 AND 100),
    auto_send       text NOT NULL DEFAULT 'never' CHECK (auto_send IN ('never', 'confident')),
    auto_threshold  smallint NOT NULL DEFAULT 90 CHECK (auto_threshold BETWEEN 0 AND 100),
    auto_classes    text[] NOT NULL DEFAULT '{}'
                    CHECK (auto_classes <@ '{positive,question,neutral,negative,follow_up}'),
    policy_version  integer NOT NULL DEFAULT 1,
    -- Who last changed it (written by the API; the policy history copies it).
    updated_by      text NOT NULL DEFAULT 'system',
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, key),
    UNIQUE (team_id, id)
);

-- Every version of every worker's auto-send policy, so a log row's version says exactly what
-- allowed a message out. Written by the trigger below: no code path can change a policy
-- without a new version.
CREATE TABLE ai_worker_policies (
    team_id     varchar(36) NOT NULL,
    worker_id   varchar(36) NOT NULL,
    version     integer NOT NULL,
    auto_send   text NOT NULL,
    threshold   smallint NOT NULL,
    classes     text[] NOT NULL,
    changed_by  text NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (worker_id, version),
    FOREIGN KEY (team_id, worker_id) REFERENCES ai_workers (team_id, id) ON DELETE CASCADE
);

CREATE FUNCTION ai_worker_policy_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.policy_version := 1;
    ELSIF (NEW.auto_send, NEW.auto_threshold, NEW.auto_classes)
          IS DISTINCT FROM (OLD.auto_send, OLD.auto_threshold, OLD.auto_classes) THEN
        NEW.policy_version := OLD.policy_version + 1;
    ELSE
        NEW.policy_version := OLD.policy_version;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ai_workers_policy_version BEFORE INSERT OR UPDATE ON ai_workers
    FOR EACH ROW EXECUTE FUNCTION ai_worker_policy_version();

CREATE FUNCTION ai_worker_policy_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.policy_version <> OLD.policy_version THEN
        INSERT INTO ai_worker_policies (team_id, worker_id, version, auto_send, threshold, classes, changed_by)
        VALUES (NEW.team_id, NEW.id, NEW.policy_version, NEW.auto_send, NEW.auto_threshold, NEW.auto_classes,
                NEW.updated_by);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ai_workers_policy_history AFTER INSERT OR UPDATE ON ai_workers
    FOR EACH ROW EXECUTE FUNCTION ai_worker_policy_history();

-- The sending numbers a worker owns: a reply to one of them goes to that worker.
CREATE TABLE ai_worker_numbers (
    team_id    varchar(36) NOT NULL,
    worker_id  varchar(36) NOT NULL,
    number     text NOT NULL,
    PRIMARY KEY (team_id, number),
    FOREIGN KEY (team_id, worker_id) REFERENCES ai_workers (team_id, id) ON DELETE CASCADE
);

CREATE TABLE ai_routing_decisions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id        varchar(36) NOT NULL,
    inbox_item_id  varchar(36) NOT NULL,
    contact_id     varchar(36) NOT NULL,
    worker_id      varchar(36),
    reason         text NOT NULL CHECK (reason IN ('number_owner', 'last_sender', 'scheduling_intent', 'exchanged')),
    detail         text NOT NULL,
    at             timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ai_routing_item_idx ON ai_routing_decisions (inbox_item_id);

-- Versioned prompts per team: a change is a new version; the newest is used.
CREATE TABLE ai_prompts (
    team_id         varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    key             text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_.-]{0,59}$'),
    version         integer NOT NULL CHECK (version >= 1),
    system_template text NOT NULL CHECK (char_length(system_template) BETWEEN 1 AND 8000),
    user_template   text NOT NULL CHECK (char_length(user_template) BETWEEN 1 AND 8000),
    model           text CHECK (char_length(model) <= 100),
    temperature     real NOT NULL DEFAULT 0.3 CHECK (temperature BETWEEN 0 AND 2),
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, key, version)
);

-- What AI work led to (suggested, sent, replied, positive, meeting booked, opted out).
CREATE TABLE ai_intelligence_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id        varchar(36) NOT NULL,
    worker_id      varchar(36),
    contact_id     varchar(36),
    suggestion_id  varchar(36),
    event          text NOT NULL CHECK (event IN ('suggested', 'sent', 'fallback', 'held', 'replied', 'meeting_booked',
                                                   'opted_out', 'handed_over', 'researched')),
    outcome        text NOT NULL DEFAULT 'neutral' CHECK (outcome IN ('positive', 'negative', 'neutral')),
    detail         text,
    at             timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ai_intelligence_worker_idx ON ai_intelligence_log (team_id, worker_id, at);

-- Suggestions now belong to a worker, carry the model's confidence and the prompt version,
-- and may be the nurture cadence's own follow-ups (no inbox item). An auto-sent one waits for
-- `send_after` (the worker's delay inside its active hours).
ALTER TABLE ai_suggestions
    ADD COLUMN worker_id      varchar(36),
    ADD COLUMN kind           text NOT NULL DEFAULT 'reply' CHECK (kind IN ('reply', 'follow_up')),
    ADD COLUMN classification text,
    ADD COLUMN confidence     smallint CHECK (confidence BETWEEN 0 AND 100),
    ADD COLUMN prompt_key     text,
    ADD COLUMN prompt_version integer,
    ADD COLUMN note           text,
    ADD COLUMN send_after     timestamptz,
    ADD COLUMN nurture_id     varchar(36),
    ALTER COLUMN inbox_item_id DROP NOT NULL,
    ADD CONSTRAINT ai_suggestions_kind_item CHECK ((kind = 'reply') = (inbox_item_id IS NOT NULL));
CREATE INDEX ai_suggestions_due_idx ON ai_suggestions (send_after) WHERE status = 'pending' AND send_after IS NOT NULL;
CREATE INDEX ai_suggestions_worker_idx ON ai_suggestions (team_id, worker_id, created_at);
CREATE UNIQUE INDEX ai_suggestions_pending_nurture_idx ON ai_suggestions (nurture_id) WHERE status = 'pending';

ALTER TABLE ai_approval_log
    ADD COLUMN worker_id      varchar(36),
    ADD COLUMN policy_version integer,
    ADD COLUMN edit_distance  integer,
    ALTER COLUMN inbox_item_id DROP NOT NULL,
    -- Nothing goes out on its own without the policy version that allowed it.
    ADD CONSTRAINT ai_approval_log_auto_policy CHECK (action <> 'auto_sent' OR policy_version IS NOT NULL) NOT VALID;

-- The nurture cadence: one active per lead, advanced by the scheduler, stopped by any reply
-- or opt-out, handed to the closer on scheduling intent.
CREATE TABLE ai_nurtures (
    id           varchar(36) PRIMARY KEY,
    team_id      varchar(36) NOT NULL,
    contact_id   varchar(36) NOT NULL,
    worker_id    varchar(36) NOT NULL,
    stage        integer NOT NULL DEFAULT 0 CHECK (stage >= 0),
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'stopped', 'handed_over', 'completed')),
    reason       text,
    next_at      timestamptz,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, id),
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE,
    FOREIGN KEY (team_id, worker_id) REFERENCES ai_workers (team_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX ai_nurtures_one_active_idx ON ai_nurtures (team_id, contact_id) WHERE status = 'active';
CREATE INDEX ai_nurtures_due_idx ON ai_nurtures (next_at) WHERE status = 'active';

-- Meetings the closer (or a person) booked.
CREATE TABLE meetings (
    id           varchar(36) PRIMARY KEY,
    team_id      varchar(36) NOT NULL,
    contact_id   varchar(36) NOT NULL,
    worker_id    varchar(36),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
    status       text NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled')),
    notes        text CHECK (char_length(notes) <= 2000),
    booked_by    text NOT NULL,
    call_id      varchar(36),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, id),
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);
CREATE INDEX meetings_contact_idx ON meetings (team_id, contact_id, starts_at);

-- NEVA's briefs: advisory, cached a day, with their citations; never written to the contact.
CREATE TABLE ai_research (
    team_id      varchar(36) NOT NULL,
    contact_id   varchar(36) NOT NULL,
    brief        text NOT NULL,
    citations    jsonb NOT NULL DEFAULT '[]',
    source       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (team_id, contact_id),
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);

-- The opener library: initial messages by category and tone, with A/B variants, weights and
-- counters a campaign step can draw from.
CREATE TABLE ai_openers (
    id          varchar(36) PRIMARY KEY,
    team_id     varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    category    text NOT NULL CHECK (category ~ '^[a-z][a-z0-9_-]{0,39}$'),
    tone        text NOT NULL DEFAULT 'friendly' CHECK (char_length(tone) BETWEEN 1 AND 40),
    variant     text NOT NULL CHECK (char_length(variant) BETWEEN 1 AND 20),
    body        text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 1600),
    weight      integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 0 AND 1000),
    sent        integer NOT NULL DEFAULT 0,
    replies     integer NOT NULL DEFAULT 0,
    positive    integer NOT NULL DEFAULT 0,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, category, variant),
    UNIQUE (team_id, id)
);
-- Which variant a message was drawn from (its counters move with replies).
ALTER TABLE messages ADD COLUMN opener_id varchar(36);
CREATE INDEX messages_opener_idx ON messages (opener_id) WHERE opener_id IS NOT NULL;

SELECT make_tenant_table(t) FROM unnest(ARRAY['ai_workers', 'ai_worker_numbers', 'ai_nurtures',
    'meetings', 'ai_research', 'ai_openers']::regclass[]) AS t;
SELECT make_audit_table(t) FROM unnest(ARRAY['ai_worker_policies', 'ai_routing_decisions', 'ai_prompts',
    'ai_intelligence_log']::regclass[]) AS t;

-- What the AI scheduler has to do now, across teams (the worker's only): nurture cadences
-- whose next follow-up is due, and auto-sent suggestions whose delay has passed.
CREATE FUNCTION ai_due(p_now timestamptz, p_limit integer)
RETURNS TABLE (kind text, team_id text, id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    (SELECT 'nurture', n.team_id::text, n.id::text FROM ai_nurtures n
      WHERE n.status = 'active' AND n.next_at <= p_now ORDER BY n.next_at LIMIT p_limit)
    UNION ALL
    (SELECT 'send', s.team_id::text, s.id::text FROM ai_suggestions s
      WHERE s.status = 'pending' AND s.send_after <= p_now ORDER BY s.send_after LIMIT p_limit)
$$;
REVOKE ALL ON FUNCTION ai_due(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ai_due(timestamptz, integer) TO nextier_worker;
