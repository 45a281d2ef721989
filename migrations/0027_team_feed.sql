-- The live feed (issue 18): a team-scoped, ordered log of what happened, read by long polls.
-- Every team event staged in the outbox lands here in the same transaction, and a few the bus
-- does not carry (an inbox item moved, an import's progress). Order without gaps: a row is
-- read only once every transaction that could still commit before it has ended (its xid is
-- below the reader's snapshot xmin), and rows are read in (xid, seq) order, so a cursor never
-- passes a row that commits later.

CREATE TABLE team_events (
    -- No foreign key: an event about a team's end is still written; the rows age out.
    team_id         varchar(36) NOT NULL,
    xid             xid8 NOT NULL DEFAULT pg_current_xact_id(),
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    type            text NOT NULL CHECK (char_length(type) BETWEEN 1 AND 100),
    data            jsonb NOT NULL,
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, xid, seq)
);
CREATE INDEX team_events_created_idx ON team_events (created_at);

SELECT make_tenant_table('team_events'::regclass);
-- The worker appends for the team whose work it does (in or out of its scope, as it stages
-- outbox rows) and prunes every team's old rows; the API role reads its own team's only.
CREATE POLICY worker_maintains ON team_events FOR ALL TO nextier_worker USING (true) WITH CHECK (true);

-- An import's progress: the object's size, so bytes read are a percentage.
ALTER TABLE imports ADD COLUMN size_bytes bigint CHECK (size_bytes >= 0);
