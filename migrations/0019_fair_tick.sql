-- The tick shares its budget fairly between teams (issue 14, fair tenants): when more steps
-- are due than the budget allows, each team's due steps are taken in turn (every team's
-- earliest, then every team's second, ...), so no team takes more than its share while others
-- wait, and a team that needs less than its share leaves the rest to the others. Within a
-- team, and within each campaign's own rate, the earliest due go first, as before.
CREATE OR REPLACE FUNCTION campaign_claim_due(p_now timestamptz, p_budget integer, p_limit integer, p_lease interval)
RETURNS TABLE (enrolment_id text, team_id text, campaign_id text, contact_id text, step integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE v_room integer;
BEGIN
    SELECT p_budget - count(*) INTO v_room FROM campaign_enrolments f
     WHERE f.status = 'active' AND f.claimed_until > p_now;
    v_room := least(v_room, p_limit);
    IF v_room <= 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH running AS (
        SELECT c.id, c.team_id, least(v_room, greatest(c.sends_per_minute - (
                   SELECT count(*) FROM campaign_enrolments f
                    WHERE f.campaign_id = c.id AND f.status = 'active' AND f.claimed_until > p_now), 0))::integer AS room
          FROM campaigns c WHERE c.status = 'RUNNING'),
    candidates AS (
        SELECT x.id, x.next_run_at, r.team_id FROM running r
        CROSS JOIN LATERAL (
            (SELECT e.id, e.next_run_at FROM campaign_enrolments e
              WHERE e.campaign_id = r.id AND e.status = 'active' AND e.claimed_until IS NULL
                AND e.next_run_at <= p_now
              ORDER BY e.next_run_at LIMIT r.room)
            UNION ALL
            (SELECT e.id, e.next_run_at FROM campaign_enrolments e
              WHERE e.campaign_id = r.id AND e.status = 'active' AND e.claimed_until <= p_now
                AND e.next_run_at <= p_now
              ORDER BY e.claimed_until LIMIT r.room)) x
         WHERE r.room > 0),
    turns AS (
        SELECT cd.id, cd.next_run_at,
               row_number() OVER (PARTITION BY cd.team_id ORDER BY cd.next_run_at, cd.id) AS turn
          FROM candidates cd),
    picked AS (
        SELECT e.id FROM campaign_enrolments e
         WHERE e.id IN (SELECT t.id FROM turns t ORDER BY t.turn, t.next_run_at, t.id LIMIT v_room)
           AND e.status = 'active' AND (e.claimed_until IS NULL OR e.claimed_until <= p_now)
         FOR UPDATE OF e SKIP LOCKED)
    UPDATE campaign_enrolments e SET claimed_until = p_now + p_lease, claims = e.claims + 1
      FROM picked WHERE e.id = picked.id
    RETURNING e.id::text, e.team_id::text, e.campaign_id::text, e.contact_id::text, e.current_step;
END $$;
