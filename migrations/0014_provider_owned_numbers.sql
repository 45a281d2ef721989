-- Sending numbers belong to a team because SignalHouse says so (DOMAIN.md B2): each team has
-- its own subgroup, and a number is the team's only when the provider lists it there.

-- The team's SignalHouse subgroup, created when the team connects SignalHouse.
ALTER TABLE teams ADD COLUMN signalhouse_subgroup_id text UNIQUE;

-- When the provider last confirmed the number is in the team's subgroup (registration, or a
-- completed purchase). Rows from before this migration were never checked: they keep sending
-- for their team but no longer route inbound messages until registered again.
ALTER TABLE sending_numbers ADD COLUMN verified_at timestamptz;

-- A number retired by one team may later be bought by another: only live rows are unique.
ALTER TABLE sending_numbers DROP CONSTRAINT sending_numbers_e164_key;
CREATE UNIQUE INDEX sending_numbers_live_e164_idx ON sending_numbers (e164) WHERE status <> 'retired';

-- Inbound routing trusts only provider-verified ownership.
CREATE OR REPLACE FUNCTION team_for_number(p_e164 text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT team_id::text FROM sending_numbers
     WHERE e164 = p_e164 AND status <> 'retired' AND verified_at IS NOT NULL
$$;

-- Numbers a team ordered into its subgroup. Each completes or fails on its own, by webhook
-- event; an event for a number nobody ordered into that subgroup changes nothing.
CREATE TABLE number_orders (
    id          varchar(36) PRIMARY KEY,
    team_id     varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    subgroup_id text NOT NULL,
    e164        text NOT NULL CHECK (e164 ~ '^\+1[2-9][0-9]{2}[2-9][0-9]{6}$'),
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed', 'failed')),
    detail      text,
    ordered_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    settled_at  timestamptz
);
CREATE UNIQUE INDEX number_orders_pending_idx ON number_orders (subgroup_id, e164) WHERE status = 'pending';
CREATE INDEX number_orders_team_idx ON number_orders (team_id, created_at);
SELECT make_tenant_table('number_orders');

-- The purchase event names the number and (usually) the subgroup, not the team: which team
-- ordered it? Without a subgroup, only an unambiguous pending order counts.
CREATE FUNCTION team_for_number_order(p_e164 text, p_subgroup text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT min(team_id)::text FROM number_orders
     WHERE e164 = p_e164 AND status = 'pending' AND (p_subgroup IS NULL OR subgroup_id = p_subgroup)
    HAVING count(DISTINCT team_id) = 1
$$;
REVOKE ALL ON FUNCTION team_for_number_order(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION team_for_number_order(text, text) TO nextier_app;
