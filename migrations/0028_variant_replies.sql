-- A/B step variants (issue 18): the first reply to an outbound message is recorded on it (its
-- classification), so a campaign step's stats split by the variant each message was drawn from.
ALTER TABLE messages ADD COLUMN reply_class text;
CREATE INDEX messages_step_opener_idx ON messages (step_id, opener_id) WHERE step_id IS NOT NULL;
