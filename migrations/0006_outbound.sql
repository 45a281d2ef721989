-- The outbound gate's data: the team's suppression list, and what the gate decided about each
-- message (segments, and a status timeline).

CREATE TABLE suppressions (
    id          varchar(36) PRIMARY KEY,
    team_id     varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    -- An E.164 number or a lower-case email address.
    address     text NOT NULL CHECK (address ~ '^\+1[2-9][0-9]{2}[2-9][0-9]{6}$' OR
                                     (address = lower(address) AND address LIKE '%_@_%')),
    kind        text NOT NULL CHECK (kind IN ('OPTED_OUT', 'BLACKLIST', 'LEGAL_DNC', 'WRONG_NUMBER')),
    reason      text,
    -- Where it came from: api, inbound_keyword, provider_error, import, merge...
    source      text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at  timestamptz,
    UNIQUE (team_id, address)
);

ALTER TABLE messages ADD COLUMN segments integer CHECK (segments >= 1);
-- Who or what sent it (`usr_…`, `key_…`, `campaign`).
ALTER TABLE messages ADD COLUMN sent_by text;
-- `blocked`: refused by the gate (a person's send that was not allowed), with the reason in `error`.
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('queued', 'sent', 'delivered', 'failed', 'received', 'blocked'));
-- Why a message was held back or refused, and by what.
CREATE TABLE message_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id     varchar(36) NOT NULL,
    message_id  varchar(36) NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    status      text NOT NULL,
    detail      text,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX message_events_message_idx ON message_events (message_id, id);

SELECT make_tenant_table(t) FROM unnest(ARRAY['suppressions', 'message_events']::regclass[]) AS t;

-- The team's sending numbers. A number belongs to one team (the inbound path finds the team
-- from the number it was sent to); a campaign sends from the numbers assigned to it, and a
-- contact's thread keeps the number it started on.
CREATE TABLE sending_numbers (
    id                   varchar(36) PRIMARY KEY,
    team_id              varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    e164                 text NOT NULL UNIQUE CHECK (e164 ~ '^\+1[2-9][0-9]{2}[2-9][0-9]{6}$'),
    provider             text NOT NULL DEFAULT 'signalhouse',
    brand_id             text,
    provider_campaign_id text,
    -- AT&T 10DLC class (throughput per campaign) and T-Mobile brand tier.
    att_class            text CHECK (att_class IN ('A', 'B', 'C', 'D', 'E', 'F', 'T')),
    tmobile_tier         text CHECK (tmobile_tier IN ('LOW', 'BASIC', 'STANDARD', 'HIGH')),
    status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'unhealthy', 'retired')),
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_error           text,
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, id)
);

CREATE TABLE campaign_numbers (
    team_id     varchar(36) NOT NULL,
    campaign_id varchar(36) NOT NULL,
    number_id   varchar(36) NOT NULL,
    PRIMARY KEY (campaign_id, number_id),
    FOREIGN KEY (team_id, campaign_id) REFERENCES campaigns (team_id, id) ON DELETE CASCADE,
    FOREIGN KEY (team_id, number_id) REFERENCES sending_numbers (team_id, id) ON DELETE CASCADE
);

-- One number per contact thread.
CREATE TABLE contact_threads (
    team_id     varchar(36) NOT NULL,
    contact_id  varchar(36) NOT NULL,
    number_id   varchar(36) NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, contact_id),
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE,
    FOREIGN KEY (team_id, number_id) REFERENCES sending_numbers (team_id, id) ON DELETE CASCADE
);

SELECT make_tenant_table(t) FROM unnest(ARRAY['sending_numbers', 'campaign_numbers', 'contact_threads']::regclass[]) AS t;

-- The inbound path knows only the number a message was sent to: which team is it?
CREATE FUNCTION team_for_number(p_e164 text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT team_id::text FROM sending_numbers WHERE e164 = p_e164 AND status <> 'retired'
$$;
REVOKE ALL ON FUNCTION team_for_number(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION team_for_number(text) TO nextier_app;
