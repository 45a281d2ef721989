-- Suppressions only get stronger, and every change is on the record.
--
-- * A kind is never replaced by a weaker one; OPTED_OUT and LEGAL_DNC never expire
--   (suppression_rank() is nextier_domain::suppression::Kind::rank; a test compares them).
-- * A permanent kind is deleted (lifted) only in a transaction that named its reason
--   (app.suppression_reason), which the store sets for an ADMIN's lift or a person's START.
-- * Every add, strengthening, repeat and lift is a row of suppression_audit: who, when, why,
--   from where and the message that asked for it. The rows are written by a trigger, so no
--   code path can change the list without leaving one, and the table is insert-only.
-- * BOUNCED joins the kinds (a hard bounce or a spam report of an email address).

CREATE FUNCTION suppression_rank(kind text) RETURNS integer LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE kind WHEN 'LEGAL_DNC' THEN 4 WHEN 'OPTED_OUT' THEN 3 WHEN 'BLACKLIST' THEN 2
                           WHEN 'WRONG_NUMBER' THEN 1 WHEN 'BOUNCED' THEN 1 ELSE 0 END $$;

ALTER TABLE suppressions DROP CONSTRAINT suppressions_kind_check;
ALTER TABLE suppressions ADD CONSTRAINT suppressions_kind_check
    CHECK (kind IN ('OPTED_OUT', 'BLACKLIST', 'LEGAL_DNC', 'WRONG_NUMBER', 'BOUNCED'));
-- The message that asked for it (a STOP, an unsubscribe), when one did.
ALTER TABLE suppressions ADD COLUMN source_message_id varchar(36);
-- Earlier versions let an API call put an expiry on an opt-out: an opt-out does not lapse.
UPDATE suppressions SET expires_at = NULL WHERE suppression_rank(kind) >= 3 AND expires_at IS NOT NULL;
ALTER TABLE suppressions ADD CONSTRAINT suppressions_permanent_check
    CHECK (suppression_rank(kind) < 3 OR expires_at IS NULL);

CREATE TABLE suppression_audit (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id             varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    address             text NOT NULL,
    -- add | strengthen | repeat | lift
    action              text NOT NULL CHECK (action IN ('add', 'strengthen', 'repeat', 'lift')),
    kind                text NOT NULL,
    previous_kind       text,
    expires_at          timestamptz,
    previous_expires_at timestamptz,
    actor               text NOT NULL,
    reason              text,
    source              text NOT NULL,
    source_message_id   varchar(36),
    at                  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX suppression_audit_address_idx ON suppression_audit (team_id, address, id);
SELECT make_tenant_table('suppression_audit');
-- Insert-only: the record of who changed consent cannot itself be changed.
REVOKE UPDATE, DELETE, TRUNCATE ON suppression_audit FROM nextier_app;

CREATE FUNCTION suppression_setting(name text) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.suppression_' || name, true), '') $$;

-- The guard: no weakening, no expiry on a permanent kind, no lift of one without a reason.
CREATE FUNCTION suppressions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- What had lapsed is a new entry; anything else may only get stronger.
        IF OLD.expires_at IS NULL OR OLD.expires_at > now() THEN
            IF suppression_rank(NEW.kind) < suppression_rank(OLD.kind) THEN
                RAISE EXCEPTION 'suppression of % cannot be weakened from % to %', OLD.address, OLD.kind, NEW.kind
                    USING ERRCODE = 'check_violation';
            END IF;
            IF suppression_rank(NEW.kind) = suppression_rank(OLD.kind) AND OLD.expires_at IS NULL
               AND NEW.expires_at IS NOT NULL THEN
                RAISE EXCEPTION 'suppression of % cannot be given an expiry', OLD.address
                    USING ERRCODE = 'check_violation';
            END IF;
        END IF;
        RETURN NEW;
    END IF;
    -- DELETE. A team being deleted takes its list with it (a cascade runs inside another trigger).
    IF suppression_rank(OLD.kind) >= 3 AND pg_trigger_depth() = 1 AND suppression_setting('reason') IS NULL THEN
        RAISE EXCEPTION 'a % suppression of % is lifted only with a reason', OLD.kind, OLD.address
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER suppressions_guard BEFORE UPDATE OR DELETE ON suppressions
    FOR EACH ROW EXECUTE FUNCTION suppressions_guard();

CREATE FUNCTION suppressions_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r suppressions%ROWTYPE;
    act text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
        act := 'lift';
    ELSE
        r := NEW;
        IF TG_OP = 'INSERT' THEN
            act := 'add';
        ELSIF NEW.kind IS DISTINCT FROM OLD.kind OR NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
            act := 'strengthen';
        ELSE
            act := 'repeat';
        END IF;
    END IF;
    -- A cascade (the team deleted) leaves no audit rows behind for a team that is gone.
    IF TG_OP = 'DELETE' AND pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    INSERT INTO suppression_audit (team_id, address, action, kind, previous_kind, expires_at, previous_expires_at,
                                   actor, reason, source, source_message_id)
    VALUES (r.team_id, r.address, act, r.kind,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.kind END,
            CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE r.expires_at END,
            CASE WHEN TG_OP <> 'INSERT' THEN OLD.expires_at END,
            coalesce(suppression_setting('actor'), r.created_by),
            coalesce(suppression_setting('reason'), r.reason),
            coalesce(suppression_setting('source'), r.source),
            coalesce(suppression_setting('message'), r.source_message_id));
    RETURN NULL;
END $$;
CREATE TRIGGER suppressions_audit AFTER INSERT OR UPDATE OR DELETE ON suppressions
    FOR EACH ROW EXECUTE FUNCTION suppressions_audit();

-- A delivery whose job was lost (a DLQ, a crash before the publish) is re-driven by the sweeper
-- when it is still unprocessed a few minutes on: how many times, and when last.
ALTER TABLE webhook_events ADD COLUMN redrives integer NOT NULL DEFAULT 0;
ALTER TABLE webhook_events ADD COLUMN redriven_at timestamptz;
