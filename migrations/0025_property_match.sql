-- The nightly property match (the worker's only): every saved search of every team with the
-- team's zone, so the scheduler can tell whose night it is.
CREATE FUNCTION property_searches_all()
RETURNS TABLE (id text, team_id text, zone text, run_day date, run_status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT s.id::text, s.team_id::text,
           (SELECT value FROM team_settings t WHERE t.team_id = s.team_id AND t.scope = 'ai' AND t.name = 'time_zone'),
           s.run_day, s.run_status
      FROM property_searches s ORDER BY s.team_id, s.id
$$;
REVOKE ALL ON FUNCTION property_searches_all() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION property_searches_all() TO nextier_worker;
