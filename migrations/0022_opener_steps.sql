-- A campaign step can draw from the opener library: the step keeps a snapshot of the
-- category's variants (opener, label, body, weight) taken when the step was written, so an
-- edit to the library never changes what an approved campaign sends; a send picks a variant
-- by weight and records it on the message (messages.opener_id), which moves its counters.
ALTER TABLE campaign_steps
    ADD COLUMN opener_category text,
    ADD COLUMN variants jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(variants) = 'array');
