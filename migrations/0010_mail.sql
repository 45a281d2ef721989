-- Mail to a team's own people (notifications such as SLA breaches), one row per mail sent so a
-- redelivered job does not mail again.
CREATE TABLE mail_log (
    team_id    varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    key        text NOT NULL,
    recipients text[] NOT NULL,
    subject    text NOT NULL,
    mailer     text NOT NULL,
    sent_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (team_id, key)
);
SELECT make_tenant_table('mail_log');
