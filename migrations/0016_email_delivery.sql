-- Email as safe as SMS, and sends settled exactly once (issue 11, items 6 and 8).

-- (A hard bounce is a BOUNCED suppression: the kind came with 0013.)

-- When a message was handed to a provider that has no idempotency key (SendGrid, Twilio).
-- Set in the transaction that commits before the provider is called and cleared when the
-- provider definitely did not take it: a retry that finds it set does not deliver again
-- (the provider may have it); the reconciler settles it.
ALTER TABLE messages ADD COLUMN dispatched_at timestamptz;

-- The reconciler's scan: outbound messages still queued.
CREATE INDEX messages_queued_idx ON messages (created_at) WHERE status = 'queued' AND direction = 'outbound';

-- A SendGrid event names our message id (a custom argument): whose message is it, and to
-- which address was it sent?
CREATE FUNCTION team_for_message(p_id text) RETURNS TABLE (team_id text, to_address text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT team_id::text, to_address FROM messages WHERE id = p_id AND direction = 'outbound'
$$;
REVOKE ALL ON FUNCTION team_for_message(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION team_for_message(text) TO nextier_app;

-- Messages left queued before p_before, across teams, oldest first (the reconciler then
-- works on each inside its team's scope).
CREATE FUNCTION stale_queued_messages(p_before timestamptz, p_limit integer)
RETURNS TABLE (id text, team_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT id::text, team_id::text FROM messages
     WHERE status = 'queued' AND direction = 'outbound' AND created_at < p_before
     ORDER BY created_at LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION stale_queued_messages(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stale_queued_messages(timestamptz, integer) TO nextier_app;
