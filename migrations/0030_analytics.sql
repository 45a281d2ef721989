-- Analytics (issue 18), kept as things happen: triggers on the rows that record them add to
-- hourly counters in the same transaction, so a retried or replayed write that changes nothing
-- counts nothing, and no report scans messages. Hours, not days, so a report can take any
-- time zone's days. Each counter row is split by the writing connection (`shard`), so
-- concurrent senders of one campaign never queue on one row; reports add the shards up.

CREATE TABLE stats_hourly (
    team_id         varchar(36) NOT NULL,
    hour            timestamptz NOT NULL,
    campaign_id     varchar(36) NOT NULL DEFAULT '',
    sending_number  text NOT NULL DEFAULT '',
    shard           smallint NOT NULL,
    sent            integer NOT NULL DEFAULT 0,
    delivered       integer NOT NULL DEFAULT 0,
    failed          integer NOT NULL DEFAULT 0,
    replied         integer NOT NULL DEFAULT 0,
    positive        integer NOT NULL DEFAULT 0,
    opted_out       integer NOT NULL DEFAULT 0,
    hot             integer NOT NULL DEFAULT 0,
    booked          integer NOT NULL DEFAULT 0,
    PRIMARY KEY (team_id, hour, campaign_id, sending_number, shard)
);

-- First responses to inbox items: per hour (of the response), bucket and person.
CREATE TABLE response_stats_hourly (
    team_id       varchar(36) NOT NULL,
    hour          timestamptz NOT NULL,
    bucket        text NOT NULL,
    responder     text NOT NULL,
    shard         smallint NOT NULL,
    responded     integer NOT NULL DEFAULT 0,
    within_sla    integer NOT NULL DEFAULT 0,
    seconds_total bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (team_id, hour, bucket, responder, shard)
);

SELECT make_tenant_table(t) FROM unnest(ARRAY['stats_hourly', 'response_stats_hourly']::regclass[]) AS t;

CREATE FUNCTION stats_bump(p_team text, p_at timestamptz, p_campaign text, p_number text,
                           p_sent int, p_delivered int, p_failed int, p_replied int,
                           p_positive int, p_opted_out int, p_hot int, p_booked int)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO stats_hourly (team_id, hour, campaign_id, sending_number, shard, sent, delivered, failed,
                              replied, positive, opted_out, hot, booked)
    VALUES (p_team, date_trunc('hour', p_at), coalesce(p_campaign, ''), coalesce(p_number, ''),
            (pg_backend_pid() % 16)::smallint, p_sent, p_delivered, p_failed, p_replied, p_positive, p_opted_out,
            p_hot, p_booked)
    ON CONFLICT (team_id, hour, campaign_id, sending_number, shard) DO UPDATE SET
        sent = stats_hourly.sent + EXCLUDED.sent, delivered = stats_hourly.delivered + EXCLUDED.delivered,
        failed = stats_hourly.failed + EXCLUDED.failed, replied = stats_hourly.replied + EXCLUDED.replied,
        positive = stats_hourly.positive + EXCLUDED.positive, opted_out = stats_hourly.opted_out + EXCLUDED.opted_out,
        hot = stats_hourly.hot + EXCLUDED.hot, booked = stats_hourly.booked + EXCLUDED.booked
$$;
REVOKE ALL ON FUNCTION stats_bump(text, timestamptz, text, text, int, int, int, int, int, int, int, int) FROM PUBLIC;

-- Outbound messages: sent when they leave (inserted sent or delivered, or moved there from
-- queued), delivered and failed when their status first becomes that.
CREATE FUNCTION stats_on_message() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
    was_sent boolean := TG_OP = 'UPDATE' AND OLD.status IN ('sent', 'delivered');
    is_sent  boolean := NEW.status IN ('sent', 'delivered');
BEGIN
    IF NEW.direction <> 'outbound' OR (TG_OP = 'UPDATE' AND OLD.status = NEW.status) THEN
        RETURN NULL;
    END IF;
    PERFORM stats_bump(NEW.team_id, CASE WHEN TG_OP = 'INSERT' THEN NEW.created_at ELSE now() END,
        NEW.campaign_id, NEW.from_address,
        (is_sent AND NOT was_sent)::int,
        (NEW.status = 'delivered')::int,
        (NEW.status = 'failed')::int,
        0, 0, 0, 0, 0);
    RETURN NULL;
END $$;
CREATE TRIGGER messages_stats AFTER INSERT OR UPDATE OF status ON messages
    FOR EACH ROW EXECUTE FUNCTION stats_on_message();

-- Replies, as the inbox records them (one item per inbound message): replied, positive
-- (interested, a question, opted in), opted out, hot (urgent or hot priority); on the campaign
-- the item names and the number the lead wrote to.
CREATE FUNCTION stats_on_inbox_item() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM stats_bump(NEW.team_id, NEW.created_at, NEW.campaign_id,
        (SELECT m.to_address FROM messages m WHERE m.id = NEW.message_id),
        0, 0, 0, 1,
        (NEW.classification IN ('POSITIVE', 'QUESTION', 'OPT_IN'))::int,
        (NEW.classification = 'DNC_REQUEST')::int,
        (NEW.priority IN ('URGENT', 'HOT'))::int,
        0);
    RETURN NULL;
END $$;
CREATE TRIGGER inbox_items_stats AFTER INSERT ON inbox_items FOR EACH ROW EXECUTE FUNCTION stats_on_inbox_item();

-- A first response: the item marked processed, by whom, how long after it came in and whether
-- within its SLA.
CREATE FUNCTION stats_on_response() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
    IF OLD.processed_at IS NOT NULL OR NEW.processed_at IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO response_stats_hourly (team_id, hour, bucket, responder, shard, responded, within_sla, seconds_total)
    VALUES (NEW.team_id, date_trunc('hour', NEW.processed_at), NEW.bucket, coalesce(NEW.processed_by, ''),
            (pg_backend_pid() % 16)::smallint, 1, (NEW.due_at IS NULL OR NEW.processed_at <= NEW.due_at)::int,
            greatest(0, extract(epoch FROM NEW.processed_at - NEW.created_at))::bigint)
    ON CONFLICT (team_id, hour, bucket, responder, shard) DO UPDATE SET
        responded = response_stats_hourly.responded + 1,
        within_sla = response_stats_hourly.within_sla + EXCLUDED.within_sla,
        seconds_total = response_stats_hourly.seconds_total + EXCLUDED.seconds_total;
    RETURN NULL;
END $$;
CREATE TRIGGER inbox_items_response_stats AFTER UPDATE OF processed_at ON inbox_items
    FOR EACH ROW EXECUTE FUNCTION stats_on_response();

-- A booked meeting: on the campaign and number of the lead's last campaign message.
CREATE FUNCTION stats_on_meeting() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
    last record;
BEGIN
    SELECT m.campaign_id, m.from_address INTO last FROM messages m
     WHERE m.contact_id = NEW.contact_id AND m.direction = 'outbound' AND m.campaign_id IS NOT NULL
     ORDER BY m.created_at DESC LIMIT 1;
    PERFORM stats_bump(NEW.team_id, NEW.created_at, last.campaign_id, last.from_address, 0, 0, 0, 0, 0, 0, 0, 1);
    RETURN NULL;
END $$;
CREATE TRIGGER meetings_stats AFTER INSERT ON meetings FOR EACH ROW EXECUTE FUNCTION stats_on_meeting();

REVOKE ALL ON FUNCTION stats_on_message() FROM PUBLIC;
REVOKE ALL ON FUNCTION stats_on_inbox_item() FROM PUBLIC;
REVOKE ALL ON FUNCTION stats_on_response() FROM PUBLIC;
REVOKE ALL ON FUNCTION stats_on_meeting() FROM PUBLIC;
