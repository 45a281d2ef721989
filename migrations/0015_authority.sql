-- Changes to what an approver signed off (sending rate, exit rules, schedule, audience band)
-- made after approval: who, when, the campaign's state then, and each field before and after.
-- An APPROVED or PAUSED campaign goes back to STAGED (`restaged`); a RUNNING one changes only
-- in the hands of an ADMIN or OWNER person. Insert-only for the application.
CREATE TABLE campaign_changes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id      varchar(36) NOT NULL,
    campaign_id  varchar(36) NOT NULL,
    actor        text NOT NULL,
    status       text NOT NULL,
    changes      jsonb NOT NULL,
    restaged     boolean NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (team_id, campaign_id) REFERENCES campaigns (team_id, id) ON DELETE CASCADE
);
CREATE INDEX campaign_changes_idx ON campaign_changes (campaign_id, id);
SELECT make_tenant_table('campaign_changes');
REVOKE UPDATE, DELETE ON campaign_changes FROM nextier_app;

-- The number a dialer session handed out, so the call's outcome (a wrong number, say) lands
-- on the number that was called.
ALTER TABLE dialer_contacts ADD COLUMN phone text;
