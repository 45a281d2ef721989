-- Enrichment and scoring (issue 15): a raw list becomes graded, textable, explainable leads.
--
-- A job covers some contacts; each contact walks raw -> traced -> graded -> ready or rejected
-- (with the reason), one SQS message per contact on the `enrichment` queue. Provider answers
-- are cached per team by their normalised input, so the same person is never paid for twice;
-- the ledger counts calls and credits per job, provider and day; the daily caps live on the
-- limiter (DynamoDB deployed), like the SMS buckets.

-- Provenance: where each number and address came from, and when. A person's entry is 'user'
-- (the API, the inbox) or 'import'; enrichment writes its provider's name. Enrichment never
-- overwrites a person's value: what a provider says about a number (line type, grade,
-- activity) is kept in columns of its own.
ALTER TABLE contact_phones
    ADD COLUMN source         text NOT NULL DEFAULT 'user',
    ADD COLUMN sourced_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN line_type      phone_type,
    ADD COLUMN activity_score integer CHECK (activity_score BETWEEN 0 AND 100),
    ADD COLUMN name_match     boolean,
    ADD COLUMN prepaid        boolean,
    ADD COLUMN graded_by      text,
    ADD COLUMN graded_at      timestamptz;
ALTER TABLE contact_emails
    ADD COLUMN source     text NOT NULL DEFAULT 'user',
    ADD COLUMN sourced_at timestamptz NOT NULL DEFAULT now();

ALTER TABLE contacts
    ADD COLUMN enrichment_status text NOT NULL DEFAULT 'raw'
        CHECK (enrichment_status IN ('raw', 'traced', 'graded', 'ready', 'rejected')),
    ADD COLUMN enrichment_reason text,
    ADD COLUMN enriched_at       timestamptz,
    ADD COLUMN score_breakdown   jsonb,
    ADD COLUMN scored_at         timestamptz,
    -- Which scalar fields a provider filled ({"company": {"source": "apollo", "at": ...}}); a
    -- field not named here is a person's.
    ADD COLUMN field_sources     jsonb NOT NULL DEFAULT '{}';
CREATE INDEX contacts_team_enrichment_idx ON contacts (team_id, enrichment_status) WHERE deleted_at IS NULL;

CREATE TABLE enrichment_jobs (
    id            varchar(36) PRIMARY KEY,
    team_id       varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    -- What it covers: 'contacts' (ids), 'filter' (a saved contact filter), 'import', or
    -- 'business' (Apollo's organisation enrich and its decision makers, who are then graded).
    source_kind   text NOT NULL CHECK (source_kind IN ('contacts', 'filter', 'import', 'business')),
    source        jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'waiting', 'completed', 'cancelled')),
    total         integer NOT NULL CHECK (total >= 0),
    -- Waiting for a provider's daily cap: until when, and why (the API says so).
    waiting_until timestamptz,
    wait_reason   text,
    requested_by  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    UNIQUE (team_id, id)
);
CREATE INDEX enrichment_jobs_team_idx ON enrichment_jobs (team_id, created_at DESC);
-- One automatic job per import.
CREATE UNIQUE INDEX enrichment_jobs_import_idx ON enrichment_jobs (team_id, (source->>'importId'))
    WHERE source_kind = 'import';

CREATE TABLE enrichment_items (
    team_id     varchar(36) NOT NULL,
    job_id      varchar(36) NOT NULL,
    contact_id  varchar(36) NOT NULL,
    -- Where the contact is in its walk.
    stage       text NOT NULL DEFAULT 'trace' CHECK (stage IN ('trace', 'poll', 'grade', 'done')),
    outcome     text CHECK (outcome IN ('ready', 'rejected', 'failed')),
    reason      text,
    -- A queue-based tracer's request id while it is polled.
    provider_ref text,
    polls       integer NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, contact_id),
    FOREIGN KEY (team_id, job_id) REFERENCES enrichment_jobs (team_id, id) ON DELETE CASCADE,
    FOREIGN KEY (team_id, contact_id) REFERENCES contacts (team_id, id) ON DELETE CASCADE
);
CREATE INDEX enrichment_items_contact_idx ON enrichment_items (contact_id);
-- "Is anything of this job still open?" after every contact: never a scan of the whole job.
CREATE INDEX enrichment_items_open_idx ON enrichment_items (job_id, stage) WHERE stage <> 'done';

-- What each provider answered, by the hash of its normalised input: asked again within the
-- provider's lifetime (skip trace 30 days), the answer comes from here and nobody is paid.
CREATE TABLE enrichment_cache (
    team_id     varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    provider    text NOT NULL,
    input_hash  text NOT NULL,
    answer      jsonb NOT NULL,
    fetched_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (team_id, provider, input_hash)
);

-- The cost ledger: per job, provider and (UTC) day, the calls made, the credits they cost and
-- the calls the cache saved.
CREATE TABLE enrichment_costs (
    team_id     varchar(36) NOT NULL,
    job_id      varchar(36) NOT NULL,
    provider    text NOT NULL,
    day         date NOT NULL,
    calls       integer NOT NULL DEFAULT 0,
    credits     integer NOT NULL DEFAULT 0,
    cache_hits  integer NOT NULL DEFAULT 0,
    failures    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (team_id, job_id, provider, day),
    FOREIGN KEY (team_id, job_id) REFERENCES enrichment_jobs (team_id, id) ON DELETE CASCADE
);

SELECT make_tenant_table(t) FROM unnest(ARRAY['enrichment_jobs', 'enrichment_items', 'enrichment_cache',
    'enrichment_costs']::regclass[]) AS t;

-- An import's new contacts, for the job that enriches them.
CREATE INDEX contact_events_import_idx ON contact_events (team_id, (data->>'importId')) WHERE kind = 'imported';

-- Businesses enriched from Apollo: where it stands, the provider's id, and which fields it
-- filled (a field a person or an import filled is never overwritten).
ALTER TABLE businesses
    ADD COLUMN apollo_status text CHECK (apollo_status IN ('requested', 'enriched', 'not_found', 'failed')),
    ADD COLUMN apollo_org_id text,
    ADD COLUMN apollo_reason text,
    ADD COLUMN enriched_at   timestamptz,
    ADD COLUMN field_sources jsonb NOT NULL DEFAULT '{}';
CREATE INDEX businesses_team_sector_idx ON businesses (team_id, lower(sector));

-- What a batch asked the tracer (the poll matches its records to these, not to whatever the
-- contact says by then), and a short lease while one delivery pays for a contact's grades.
ALTER TABLE enrichment_items
    ADD COLUMN submitted    jsonb,
    ADD COLUMN leased_until timestamptz;
