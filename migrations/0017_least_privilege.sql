-- Least privilege inside the database. Two login roles, both without BYPASSRLS:
--   * nextier_app: the API functions. Rows of the team in scope, the three auth lookups, and
--     the outbox only to stage a row of its own team and publish a row it has just staged;
--   * nextier_worker: consumers, crons and webhooks. A member of nextier_app (so every
--     tenant grant and policy applies to it unchanged), and besides: the functions that
--     cross teams, the whole outbox, and webhook deliveries not yet routed to a team.
-- The roles are created by the migration runner (ensure_roles), which also revokes CREATE
-- on schema public from PUBLIC and both roles (as the admin: the schema is not the owner's).
-- Written over the catalog, so that tables and functions of earlier migrations are covered
-- whatever their number.

-- Functions that cross teams: the worker's only. Every SECURITY DEFINER function the app role
-- could execute moves to the worker, except those the API needs before a team is known and
-- the two outbox functions below. (A definer function the API must call goes in this list and
-- in APP_DEFINER_FUNCTIONS of shared/store/tests/privileges.rs.)
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public' AND p.prosecdef
           AND p.proname NOT IN ('auth_resolve_user', 'auth_api_key', 'auth_invitation')
           AND has_function_privilege('nextier_app', p.oid, 'EXECUTE')
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, nextier_app', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO nextier_worker', f);
    END LOOP;
END $$;

-- The outbox ------------------------------------------------------------------------------
-- The app role stages rows of the team in scope (INSERT, and reading its own dedupe keys: it
-- can neither read nor change a row otherwise, its own included); the worker drains every
-- team's rows. The app role publishes what it has just staged through outbox_claim_staged /
-- outbox_settle_staged: a row's id is the ticket, returned only to the transaction that
-- staged it, good for one attempt within five minutes. Anything else (a failed first attempt,
-- a crash before publishing) is the sweeper's, which connects as the worker.
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
REVOKE ALL ON outbox FROM PUBLIC, nextier_app;
GRANT INSERT ON outbox TO nextier_app;
CREATE POLICY stage_own_team ON outbox FOR INSERT TO nextier_app WITH CHECK (team_id = app_team_id());
-- ON CONFLICT (dedupe_key) needs to read the key, and checks the new row against a SELECT
-- policy: the dedupe keys of the team in scope, and no other column, are readable.
GRANT SELECT (dedupe_key) ON outbox TO nextier_app;
CREATE POLICY own_team_dedupe_keys ON outbox FOR SELECT TO nextier_app USING (team_id = app_team_id());
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO nextier_worker;
CREATE POLICY worker_drains ON outbox FOR ALL TO nextier_worker USING (true) WITH CHECK (true);
CREATE POLICY owner_maintenance ON outbox FOR ALL TO nextier_owner USING (true) WITH CHECK (true);

-- Leases the named rows that nobody has tried yet (at most 100, staged in the last five
-- minutes) and returns them for delivery.
CREATE FUNCTION outbox_claim_staged(p_ids text[], p_lease_secs integer)
RETURNS TABLE (id text, team_id text, kind text, destination text, payload jsonb, correlation_id text, attempts integer)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE outbox o SET available_at = now() + make_interval(secs => least(greatest(p_lease_secs, 1), 300)),
                        attempts = o.attempts + 1
     WHERE o.id IN (SELECT s.id FROM outbox s
                     WHERE s.id = ANY(p_ids[1:100]) AND s.published_at IS NULL AND s.attempts = 0
                       AND s.available_at <= now() AND s.created_at > now() - interval '5 minutes'
                     FOR UPDATE SKIP LOCKED)
    RETURNING o.id::text, o.team_id::text, o.kind, o.destination, o.payload, o.correlation_id, o.attempts
$$;

-- Settles rows claimed by outbox_claim_staged whose lease still runs: published when
-- p_error is NULL, else due again after p_retry_secs with the error recorded.
CREATE FUNCTION outbox_settle_staged(p_ids text[], p_error text, p_retry_secs integer) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH settled AS (
        UPDATE outbox SET published_at = CASE WHEN p_error IS NULL THEN now() END,
                          last_error = left(p_error, 2000),
                          available_at = CASE WHEN p_error IS NULL THEN available_at
                                              ELSE now() + make_interval(secs => least(greatest(p_retry_secs, 1), 300)) END
         WHERE id = ANY(p_ids[1:100]) AND published_at IS NULL AND attempts = 1 AND available_at > now()
           AND created_at > now() - interval '5 minutes'
        RETURNING 1)
    SELECT count(*)::integer FROM settled
$$;
REVOKE ALL ON FUNCTION outbox_claim_staged(text[], integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION outbox_settle_staged(text[], text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outbox_claim_staged(text[], integer) TO nextier_app;
GRANT EXECUTE ON FUNCTION outbox_settle_staged(text[], text, integer) TO nextier_app;

-- Webhook deliveries ----------------------------------------------------------------------
-- An unrouted delivery belongs to no team: only the worker sees it (to store, route and
-- re-drive it). A team sees its routed deliveries and changes none.
DROP POLICY routing ON webhook_events;
CREATE POLICY tenant_read ON webhook_events FOR SELECT TO nextier_app USING (team_id = app_team_id());
CREATE POLICY worker_routing ON webhook_events FOR ALL TO nextier_worker USING (true) WITH CHECK (true);
REVOKE ALL ON webhook_events FROM PUBLIC, nextier_app;
GRANT SELECT ON webhook_events TO nextier_app;
GRANT INSERT ON webhook_events TO nextier_worker;

-- Audit tables: insert-only --------------------------------------------------------------
-- What happened is written once and read, never changed or removed by the application
-- (cascades from a deleted parent run as the owner). The list, plus every table named
-- *_audit (suppression_audit among them). Two keep a column-level UPDATE: a timeline event
-- re-pointed at the survivor of a contact merge, and a delivery's processing columns (never
-- what arrived).
DO $$
DECLARE t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
           AND (c.relname IN ('campaign_state_changes', 'bucket_movements', 'ai_approval_log', 'message_events',
                              'mail_log', 'contact_merges', 'contact_events', 'webhook_events')
                OR c.relname ~ '_audit$')
    LOOP
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %s FROM PUBLIC, nextier_app, nextier_worker', t);
    END LOOP;
END $$;
GRANT UPDATE (contact_id) ON contact_events TO nextier_app;
-- The worker records what became of a delivery (its team, outcome, and any processing column
-- an earlier migration added); what arrived stays as it arrived.
DO $$
DECLARE c text;
BEGIN
    FOR c IN
        SELECT a.attname FROM pg_attribute a
         WHERE a.attrelid = 'webhook_events'::regclass AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attname NOT IN ('id', 'provider', 'delivery_id', 'event', 'payload', 'raw_body', 'signed_at',
                                 'received_at', 'source')
    LOOP
        EXECUTE format('GRANT UPDATE (%I) ON webhook_events TO nextier_worker', c);
    END LOOP;
END $$;

-- For later migrations: an append-only tenant table (RLS like make_tenant_table, but only
-- SELECT and INSERT are granted).
CREATE FUNCTION make_audit_table(t regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM make_tenant_table(t);
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %s FROM PUBLIC, nextier_app, nextier_worker', t);
END $$;
REVOKE ALL ON FUNCTION make_audit_table(regclass) FROM PUBLIC;
