-- Calls: the call queue (hot leads waiting for a person to call), every call's outcome, and
-- power-dialer sessions over a list of contacts.

CREATE TABLE call_queue (
    id              varchar(36) PRIMARY KEY,
    team_id         varchar(36) NOT NULL,
    contact_id      varchar(36) NOT NULL,
    phone           text NOT NULL CHECK (phone ~ '^\+1[2-9][0-9]{2}[2-9][0-9]{6}$'),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'completed', 'cancelled')),
    priority        integer NOT NULL CHECK (priority BETWEEN 0 AND 1000),
    -- Why it qualified: gold_label, wants_call, green_tag, score_threshold, manual.
    reason          text NOT NULL,
    source          text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 20),
    -- Not before this time (a retry after no answer waits).
    available_at    timestamptz NOT NULL DEFAULT now(),
    claimed_by      text,
    claimed_until   timestamptz,
    last_outcome    text,
    last_attempt_at timestamptz,
    completed_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE,
    UNIQUE (team_id, id)
);
-- One open entry per contact: pushing again raises its priority instead.
CREATE UNIQUE INDEX call_queue_open_idx ON call_queue (team_id, contact_id) WHERE status IN ('pending', 'claimed');
CREATE INDEX call_queue_next_idx ON call_queue (team_id, priority DESC, available_at) WHERE status = 'pending';

CREATE TABLE dialer_sessions (
    id          varchar(36) PRIMARY KEY,
    team_id     varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    title       text NOT NULL,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'finished')),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    UNIQUE (team_id, id)
);

CREATE TABLE dialer_contacts (
    team_id     varchar(36) NOT NULL,
    session_id  varchar(36) NOT NULL,
    contact_id  varchar(36) NOT NULL,
    position    integer NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'calling', 'called', 'skipped')),
    skip_reason text,
    PRIMARY KEY (session_id, contact_id),
    UNIQUE (session_id, position),
    FOREIGN KEY (team_id, session_id) REFERENCES dialer_sessions (team_id, id) ON DELETE CASCADE,
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);

CREATE TABLE call_history (
    id               varchar(36) PRIMARY KEY,
    team_id          varchar(36) NOT NULL,
    contact_id       varchar(36) NOT NULL,
    phone            text NOT NULL,
    call_queue_id    varchar(36) REFERENCES call_queue(id) ON DELETE SET NULL,
    session_id       varchar(36) REFERENCES dialer_sessions(id) ON DELETE SET NULL,
    outcome          text NOT NULL CHECK (outcome IN ('connected', 'no_answer', 'busy', 'voicemail', 'wrong_number',
                                                      'not_interested', 'callback', 'appointment_booked', 'failed')),
    duration_seconds integer CHECK (duration_seconds >= 0),
    notes            text,
    called_by        text NOT NULL,
    provider_call_id text,
    at               timestamptz NOT NULL DEFAULT clock_timestamp(),
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);
CREATE INDEX call_history_contact_idx ON call_history (contact_id, at DESC);
CREATE UNIQUE INDEX call_history_provider_idx ON call_history (team_id, provider_call_id) WHERE provider_call_id IS NOT NULL;

SELECT make_tenant_table(t) FROM unnest(ARRAY['call_queue', 'dialer_sessions', 'dialer_contacts', 'call_history']::regclass[]) AS t;
