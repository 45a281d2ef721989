-- AI-written replies: a suggestion for an inbox item, and one approval-log row for every
-- suggestion that is decided (approved, edited, rejected or auto-sent). Nothing AI-written is
-- sent without its log row: the row is written in the transaction that records the message.

CREATE TABLE ai_suggestions (
    id             varchar(36) PRIMARY KEY,
    team_id        varchar(36) NOT NULL,
    inbox_item_id  varchar(36) NOT NULL REFERENCES inbox_items(id) ON DELETE CASCADE,
    contact_id     varchar(36) NOT NULL,
    suggested_text text NOT NULL CHECK (length(suggested_text) BETWEEN 1 AND 1600),
    -- template:<class> or llm:<model>
    source         text NOT NULL,
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'edited', 'rejected', 'auto_sent')),
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    decided_at     timestamptz,
    UNIQUE (team_id, id)
);
CREATE INDEX ai_suggestions_item_idx ON ai_suggestions (inbox_item_id, created_at DESC);
-- One pending suggestion per item at a time.
CREATE UNIQUE INDEX ai_suggestions_pending_idx ON ai_suggestions (inbox_item_id) WHERE status = 'pending';

CREATE TABLE ai_approval_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id        varchar(36) NOT NULL,
    suggestion_id  varchar(36) NOT NULL UNIQUE REFERENCES ai_suggestions(id) ON DELETE CASCADE,
    inbox_item_id  varchar(36) NOT NULL,
    suggested_text text NOT NULL,
    final_text     text,
    action         text NOT NULL CHECK (action IN ('approved', 'edited', 'rejected', 'auto_sent')),
    reason         text,
    actor          text NOT NULL,
    message_id     varchar(36),
    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((action = 'rejected') = (final_text IS NULL))
);

SELECT make_tenant_table(t) FROM unnest(ARRAY['ai_suggestions', 'ai_approval_log']::regclass[]) AS t;
