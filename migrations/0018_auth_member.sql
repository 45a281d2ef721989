-- One statement for an authenticated team request: resolve the signed-in person (created on
-- first sight) and read their approved role in the team asked for, so that `open_team` scopes
-- the transaction and knows the caller's authority in one round trip (was two).
-- It reveals nothing the caller could not already read: their own membership of one team
-- (the `my_memberships` policy shows them all).
CREATE FUNCTION auth_team_member(p_new_id text, p_subject text, p_email text, p_name text, p_team text)
RETURNS TABLE (user_id text, role text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE v_id text := auth_resolve_user(p_new_id, p_subject, p_email, p_name);
BEGIN
    RETURN QUERY
        SELECT v_id, (SELECT m.role::text FROM team_members m
                       WHERE m.team_id = p_team AND m.user_id = v_id AND m.status = 'APPROVED');
END $$;
REVOKE ALL ON FUNCTION auth_team_member(text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_team_member(text, text, text, text, text) TO nextier_app;
