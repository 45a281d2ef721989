-- Deleting or hiding a received message finds it by its receipt handle: an index, so that a
-- queue holding a campaign's minute of steps (thousands) does not scan them for each one.
CREATE INDEX local_queue_messages_receipt_idx ON local_queue_messages (queue, receipt_handle);
