-- The delivery exactly as it arrived (the signed bytes), beside its parsed payload: what an
-- audit of a disputed opt-out, or a provider's support, asks for.
ALTER TABLE webhook_events ADD COLUMN raw_body bytea NOT NULL DEFAULT ''::bytea;
