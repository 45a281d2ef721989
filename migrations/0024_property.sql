-- Property intelligence (issue 17): what RealEstateAPI says of a property, kept per team; its
-- owners linked to the team's contacts (one contact per person) with how they were matched;
-- the distress score with its signals; saved searches the nightly match runs.

ALTER TABLE properties
    ADD COLUMN county             text,
    -- The owners as the record names them, in order: [{"first": .., "last": ..}].
    ADD COLUMN owner_names        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(owner_names) = 'array'),
    ADD COLUMN owner_type         text,
    ADD COLUMN mail_line1         text,
    ADD COLUMN mail_city          text,
    ADD COLUMN mail_state         text,
    ADD COLUMN mail_zip           text,
    ADD COLUMN owner_occupied     boolean,
    ADD COLUMN vacant             boolean,
    ADD COLUMN pre_foreclosure    boolean,
    ADD COLUMN estimated_equity   bigint,
    ADD COLUMN mortgage_balance   bigint,
    ADD COLUMN loan_maturity_date date,
    ADD COLUMN raw                jsonb,
    ADD COLUMN refreshed_at       timestamptz,
    ADD COLUMN updated_at         timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT properties_team_id_id_key UNIQUE (team_id, id);
CREATE INDEX properties_team_place_idx ON properties (team_id, state, city, zip);

ALTER TABLE property_owners
    ADD COLUMN owner_number smallint NOT NULL DEFAULT 1 CHECK (owner_number BETWEEN 1 AND 4),
    -- How the contact was found: `name_and_address` (an existing contact) or `created` (new, for review).
    ADD COLUMN matched_by   text NOT NULL DEFAULT 'name_and_address' CHECK (matched_by IN ('name_and_address', 'created', 'person')),
    ADD COLUMN linked_at    timestamptz NOT NULL DEFAULT now();

-- Saved searches (the nightly match runs each in the team's night).
CREATE TABLE property_searches (
    id            varchar(36) PRIMARY KEY,
    team_id       varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    criteria      jsonb NOT NULL CHECK (jsonb_typeof(criteria) = 'object'),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- The current run: where it is (a page index), so a run that dies resumes.
    run_day       date,
    run_index     integer NOT NULL DEFAULT 0,
    run_status    text CHECK (run_status IN ('running', 'done', 'failed')),
    run_note      text,
    last_run_at   timestamptz,
    UNIQUE (team_id, name)
);

SELECT make_tenant_table('property_searches'::regclass);
