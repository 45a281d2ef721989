-- Property intelligence, after a review (issue 17): a nightly run is leased so two invocations
-- never walk one search at once; a run that keeps failing for another reason than the daily
-- cap stops for the night as `failed` after three attempts; the searches that waited longest
-- go first. Property searches and details are on the cost ledger, which is no longer only
-- per enrichment job (a job's spend also outlives the job).

ALTER TABLE property_searches
    ADD COLUMN run_attempts    integer NOT NULL DEFAULT 0,
    ADD COLUMN run_lease_until timestamptz;

ALTER TABLE enrichment_costs DROP CONSTRAINT enrichment_costs_team_id_job_id_fkey;

DROP FUNCTION property_searches_all();
CREATE FUNCTION property_searches_all()
RETURNS TABLE (id text, team_id text, zone text, run_day date, run_status text, last_run_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT s.id::text, s.team_id::text,
           (SELECT value FROM team_settings t WHERE t.team_id = s.team_id AND t.scope = 'ai' AND t.name = 'time_zone'),
           s.run_day, s.run_status, s.last_run_at
      FROM property_searches s ORDER BY s.last_run_at NULLS FIRST, s.team_id, s.id
$$;
REVOKE ALL ON FUNCTION property_searches_all() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION property_searches_all() TO nextier_worker;
