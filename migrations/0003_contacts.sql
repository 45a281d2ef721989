-- Contacts: one per person per team. Every phone, email, address, business role, property
-- and enrichment result hangs off the contact, so an opt-out or a reply on any of them is
-- an opt-out or a reply of the person (the original kept persona and lead apart and lost
-- that; DOMAIN.md C.2).

CREATE TYPE lead_state AS ENUM ('new', 'touched', 'retargeting', 'responded', 'soft_interest',
    'email_captured', 'content_nurture', 'high_intent', 'appointment_booked', 'in_call_queue',
    'closed', 'suppressed');
CREATE TYPE phone_type AS ENUM ('mobile', 'landline', 'voip', 'unknown');

CREATE TABLE contacts (
    id              varchar(36) PRIMARY KEY,
    team_id         varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    first_name      text,
    last_name       text,
    company         text,
    title           text,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    pipeline_status text NOT NULL DEFAULT 'raw'
                    CHECK (pipeline_status IN ('raw', 'ready', 'queued', 'sent', 'replied', 'booked')),
    lead_state      lead_state NOT NULL DEFAULT 'new',
    score           integer NOT NULL DEFAULT 0 CHECK (score BETWEEN 0 AND 100),
    tags            text[] NOT NULL DEFAULT '{}',
    source          text,
    custom_fields   jsonb NOT NULL DEFAULT '{}',
    needs_review    boolean NOT NULL DEFAULT false,
    merged_into     varchar(36) REFERENCES contacts(id),
    deleted_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Children reference (team_id, id): a row can only ever point at a contact of its own
    -- team (foreign-key checks bypass row-level security, so this is what guarantees it).
    UNIQUE (team_id, id)
);
CREATE INDEX contacts_team_idx ON contacts (team_id, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_team_state_idx ON contacts (team_id, lead_state) WHERE deleted_at IS NULL;
CREATE INDEX contacts_team_score_idx ON contacts (team_id, score) WHERE deleted_at IS NULL;
CREATE INDEX contacts_tags_idx ON contacts USING gin (tags);
CREATE INDEX contacts_name_idx ON contacts (team_id, lower(last_name), lower(first_name));

CREATE TABLE contact_phones (
    id          varchar(36) PRIMARY KEY,
    team_id     varchar(36) NOT NULL,
    contact_id  varchar(36) NOT NULL,
    e164        text NOT NULL CHECK (e164 ~ '^\+1[2-9][0-9]{2}[2-9][0-9]{6}$'),
    type        phone_type NOT NULL DEFAULT 'unknown',
    carrier     text,
    is_primary  boolean NOT NULL DEFAULT false,
    do_not_call boolean NOT NULL DEFAULT false,
    line_grade  char(1) CHECK (line_grade IN ('A', 'B', 'C', 'D', 'F')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, e164),         -- a number belongs to at most one contact per team
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_phones_contact_idx ON contact_phones (contact_id);

CREATE TABLE contact_emails (
    id           varchar(36) PRIMARY KEY,
    team_id      varchar(36) NOT NULL,
    contact_id   varchar(36) NOT NULL,
    email        text NOT NULL CHECK (email = lower(email)),
    is_primary   boolean NOT NULL DEFAULT false,
    unsubscribed boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, email),
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_emails_contact_idx ON contact_emails (contact_id);

CREATE TABLE contact_addresses (
    id          varchar(36) PRIMARY KEY,
    team_id     varchar(36) NOT NULL,
    contact_id  varchar(36) NOT NULL,
    line1       text,
    city        text,
    state       char(2) CHECK (state ~ '^[A-Z]{2}$'),
    zip         text CHECK (zip ~ '^[0-9]{5}$'),
    time_zone   text,
    is_current  boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_addresses_contact_idx ON contact_addresses (contact_id);
CREATE INDEX contact_addresses_geo_idx ON contact_addresses (team_id, state, zip);

CREATE TABLE businesses (
    id              varchar(36) PRIMARY KEY,
    team_id         varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name            text NOT NULL,
    normalized_name text NOT NULL,
    sic_code        text,
    naics_code      text,
    sector          text,
    line1           text,
    city            text,
    state           char(2),
    zip             text,
    employee_count  integer CHECK (employee_count >= 0),
    annual_revenue  bigint CHECK (annual_revenue >= 0),
    website         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX businesses_identity_idx ON businesses (team_id, normalized_name, coalesce(zip, ''));

CREATE TABLE business_owners (
    team_id           varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    business_id       varchar(36) NOT NULL REFERENCES businesses(id) ON DELETE CASCADE,
    contact_id        varchar(36) NOT NULL,
    role              text NOT NULL DEFAULT 'unknown' CHECK (role IN ('owner', 'ceo', 'partner', 'investor',
                          'sales_manager', 'executive', 'manager', 'professional', 'unknown')),
    is_decision_maker boolean NOT NULL DEFAULT false,
    PRIMARY KEY (business_id, contact_id),
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);
CREATE INDEX business_owners_contact_idx ON business_owners (contact_id);

CREATE TABLE properties (
    id               varchar(36) PRIMARY KEY,
    team_id          varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    source           text NOT NULL,
    external_id      text NOT NULL,
    line1            text,
    city             text,
    state            char(2),
    zip              text,
    property_type    text,
    estimated_value  bigint,
    equity_percent   numeric(5,2),
    year_built       integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, source, external_id)
);

CREATE TABLE property_owners (
    team_id        varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    property_id    varchar(36) NOT NULL REFERENCES properties(id) ON DELETE CASCADE,
    contact_id     varchar(36) NOT NULL,
    ownership_type text NOT NULL DEFAULT 'individual'
                   CHECK (ownership_type IN ('individual', 'corporate', 'trust', 'estate', 'joint')),
    PRIMARY KEY (property_id, contact_id),
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);
CREATE INDEX property_owners_contact_idx ON property_owners (contact_id);

CREATE TABLE property_distress_scores (
    team_id      varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    property_id  varchar(36) PRIMARY KEY REFERENCES properties(id) ON DELETE CASCADE,
    score        integer NOT NULL CHECK (score BETWEEN 0 AND 100),
    signals      jsonb NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- A merge moves everything of `merged_id` to `survivor_id`; the snapshot explains it later.
CREATE TABLE contact_merges (
    id           varchar(36) PRIMARY KEY,
    team_id      varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    survivor_id  varchar(36) NOT NULL REFERENCES contacts(id),
    merged_id    varchar(36) NOT NULL REFERENCES contacts(id),
    merged_by    text NOT NULL,
    reason       text,
    snapshot     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contact_merges_survivor_idx ON contact_merges (team_id, survivor_id);

-- The contact's timeline; later capabilities add messages, inbox items, enrolments, calls.
CREATE TABLE contact_events (
    id          varchar(36) PRIMARY KEY,
    team_id     varchar(36) NOT NULL,
    contact_id  varchar(36) NOT NULL,
    kind        text NOT NULL,
    data        jsonb NOT NULL DEFAULT '{}',
    actor       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_events_contact_idx ON contact_events (contact_id, id);

-- Every tenant table gets the same treatment; later migrations call this instead of
-- repeating it (and so cannot forget FORCE).
CREATE FUNCTION make_tenant_table(t regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %s FOR ALL TO nextier_app
                      USING (team_id = app_team_id()) WITH CHECK (team_id = app_team_id())', t);
    EXECUTE format('CREATE POLICY owner_maintenance ON %s FOR ALL TO nextier_owner USING (true) WITH CHECK (true)', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO nextier_app', t);
END $$;
REVOKE ALL ON FUNCTION make_tenant_table(regclass) FROM PUBLIC;

SELECT make_tenant_table(t) FROM unnest(ARRAY['contacts', 'contact_phones', 'contact_emails', 'contact_addresses',
    'businesses', 'business_owners', 'properties', 'property_owners', 'property_distress_scores', 'contact_merges',
    'contact_events']::regclass[]) AS t;
