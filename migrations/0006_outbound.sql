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
