-- CSV imports. A job streams its file into import_rows (UNLOGGED: a staging area, rebuilt
-- from the file if the database ever loses it) in checkpointed chunks, then merges into
-- contacts in one transaction, so a failed job never leaves a partial merge.

CREATE TABLE import_presets (
    id          varchar(36) PRIMARY KEY,
    team_id     varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    kind        text NOT NULL CHECK (kind IN ('contacts', 'b2b')),
    mapping     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, name)
);

CREATE TABLE imports (
    id               varchar(36) PRIMARY KEY,
    team_id          varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('contacts', 'b2b')),
    status           text NOT NULL DEFAULT 'awaiting_upload'
                     CHECK (status IN ('awaiting_upload', 'running', 'completed', 'failed')),
    file_name        text NOT NULL,
    object_key       text NOT NULL UNIQUE,
    mapping          jsonb,                       -- header -> field, or NULL for header names
    source           text,
    columns          jsonb,                       -- resolved from the header on the first pass
    header_len       integer,
    rows_read        integer NOT NULL DEFAULT 0,
    rows_created     integer NOT NULL DEFAULT 0,
    rows_merged      integer NOT NULL DEFAULT 0,
    rows_unchanged   integer NOT NULL DEFAULT 0,
    rows_duplicate   integer NOT NULL DEFAULT 0,
    rows_rejected    integer NOT NULL DEFAULT 0,
    problems         integer NOT NULL DEFAULT 0,
    checkpoint_bytes bigint NOT NULL DEFAULT 0,
    lease_until      timestamptz,
    report_key       text,
    error            text,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    staged_at        timestamptz,                 -- streaming done, merge begins
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX imports_team_idx ON imports (team_id, id);

CREATE UNLOGGED TABLE import_rows (
    import_id       varchar(36) NOT NULL,
    team_id         varchar(36) NOT NULL,
    row_no          integer NOT NULL,
    -- ids minted while staging, used if the row creates the contact / phone / email / ...
    new_contact_id  varchar(36) NOT NULL,
    new_phone_id    varchar(36) NOT NULL,
    new_email_id    varchar(36) NOT NULL,
    new_address_id  varchar(36) NOT NULL,
    new_event_id    varchar(36) NOT NULL,
    new_business_id varchar(36) NOT NULL,
    business_key    text,                        -- normalised company name (B2B)
    role            text,                        -- business role from the title (B2B)
    decision_maker  boolean NOT NULL DEFAULT false,
    dup_of          integer,                     -- an earlier row of the file with this phone/email
    match_id        varchar(36),                 -- the existing contact this row merges into
    touched         boolean NOT NULL DEFAULT false, -- the merge changed that contact
    first_name      text,
    last_name       text,
    company         text,
    title           text,
    phone           text,
    phone_type      text,
    email           text,
    line1           text,
    city            text,
    state           text,
    zip             text,
    tags            text[] NOT NULL DEFAULT '{}',
    sic_code        text,
    sector          text,
    employees       integer,
    revenue         bigint,
    website         text,
    PRIMARY KEY (import_id, row_no)
);

CREATE UNLOGGED TABLE import_errors (
    import_id  varchar(36) NOT NULL,
    team_id    varchar(36) NOT NULL,
    row_no     integer NOT NULL,
    col        text NOT NULL,
    reason     text NOT NULL,
    value      text NOT NULL DEFAULT ''
);
CREATE INDEX import_errors_idx ON import_errors (import_id, row_no);

-- The staging table has no statistics until analyzed, and only its owner may analyze it; the
-- merge calls this first so the planner hashes its joins instead of looping.
CREATE FUNCTION analyze_import_rows() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp AS $$ BEGIN ANALYZE import_rows; END $$;
REVOKE ALL ON FUNCTION analyze_import_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analyze_import_rows() TO nextier_app;

SELECT make_tenant_table(t) FROM unnest(ARRAY['import_presets', 'imports', 'import_rows', 'import_errors']::regclass[]) AS t;
