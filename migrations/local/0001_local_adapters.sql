-- Applied only by the local runtime and the tests: the Postgres-backed stand-ins for SQS
-- and EventBridge. Deployed databases never get these tables.

CREATE TABLE local_queues (
    name                text PRIMARY KEY,
    visibility_timeout  integer NOT NULL DEFAULT 30,   -- seconds
    max_receive_count   integer,                       -- NULL: no dead-letter queue
    dead_letter_queue   text REFERENCES local_queues(name)
);

CREATE TABLE local_queue_messages (
    id              varchar(36) PRIMARY KEY,
    queue           text NOT NULL REFERENCES local_queues(name),
    body            text NOT NULL,
    attributes      jsonb NOT NULL DEFAULT '{}',
    receive_count   integer NOT NULL DEFAULT 0,
    receipt_handle  text,
    visible_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz NOT NULL DEFAULT now(),
    first_received_at timestamptz
);
CREATE INDEX local_queue_messages_ready_idx ON local_queue_messages (queue, visible_at, id);

CREATE TABLE local_events (
    id              varchar(36) PRIMARY KEY,
    bus             text NOT NULL,
    source          text NOT NULL,
    detail_type     text NOT NULL,
    detail          jsonb NOT NULL,
    published_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX local_events_type_idx ON local_events (detail_type, id);

GRANT SELECT, INSERT, UPDATE, DELETE ON local_queues, local_queue_messages, local_events TO nextier_app;
