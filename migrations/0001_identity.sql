-- Identity and tenancy: users, teams, members, invitations, API keys, settings.
--
-- Tenant isolation is enforced here, not in application code:
--   * every tenant-owned table has team_id, ROW LEVEL SECURITY and FORCE ROW LEVEL SECURITY;
--   * the application connects as nextier_app, which owns nothing and has no BYPASSRLS;
--   * the team is set per transaction with set_config('app.team_id', $1, true); when it is
--     not set, tenant policies match no row at all (there is no "service bypass" policy);
--   * the few lookups that must cross tenants before a team is known (resolve a user, an
--     API key, an invitation token) are SECURITY DEFINER functions owned by nextier_owner.
-- Objects are created by nextier_owner (the migration runner SETs ROLE to it).

CREATE FUNCTION app_team_id() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.team_id', true), '') $$;
CREATE FUNCTION app_user_id() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.user_id', true), '') $$;

CREATE TYPE member_role AS ENUM ('OWNER', 'ADMIN', 'MEMBER');
CREATE TYPE member_status AS ENUM ('PENDING', 'APPROVED');

CREATE TABLE users (
    id          varchar(36) PRIMARY KEY,
    subject     text NOT NULL UNIQUE,          -- the identity provider's `sub`
    email       text,
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE teams (
    id          varchar(36) PRIMARY KEY,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    slug        text NOT NULL UNIQUE,
    created_by  varchar(36) NOT NULL REFERENCES users(id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE team_members (
    team_id     varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id     varchar(36) NOT NULL REFERENCES users(id),
    role        member_role NOT NULL DEFAULT 'MEMBER',
    status      member_status NOT NULL DEFAULT 'PENDING',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_idx ON team_members (user_id, team_id);

CREATE TABLE team_invitations (
    id           varchar(36) PRIMARY KEY,
    team_id      varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    email        text NOT NULL,
    role         member_role NOT NULL CHECK (role <> 'OWNER'),
    token_hash   text NOT NULL UNIQUE,
    invited_by   varchar(36) NOT NULL REFERENCES users(id),
    expires_at   timestamptz NOT NULL,
    accepted_at  timestamptz,
    accepted_by  varchar(36) REFERENCES users(id),
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- One open invitation per address per team.
CREATE UNIQUE INDEX team_invitations_open_idx ON team_invitations (team_id, lower(email))
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

CREATE TABLE api_keys (
    id            varchar(36) PRIMARY KEY,
    team_id       varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    prefix        text NOT NULL,
    key_hash      text NOT NULL UNIQUE,
    scopes        text[] NOT NULL,
    created_by    varchar(36) REFERENCES users(id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_team_idx ON api_keys (team_id, id);

CREATE TABLE team_settings (
    team_id     varchar(36) NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    scope       text NOT NULL,
    name        text NOT NULL,
    value       text NOT NULL,
    is_secret   boolean NOT NULL DEFAULT false,
    updated_by  varchar(36),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, scope, name)
);

-- Row-level security -------------------------------------------------------------------

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
-- A user sees themself and the people of the team in scope.
CREATE POLICY self_or_teammate ON users FOR SELECT TO nextier_app
    USING (id = app_user_id()
           OR id IN (SELECT m.user_id FROM team_members m WHERE m.team_id = app_team_id()));
CREATE POLICY self_update ON users FOR UPDATE TO nextier_app
    USING (id = app_user_id()) WITH CHECK (id = app_user_id());

ALTER TABLE teams ENABLE ROW LEVEL SECURITY;
ALTER TABLE teams FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON teams FOR ALL TO nextier_app
    USING (id = app_team_id()) WITH CHECK (id = app_team_id());
-- Listing "my teams" needs no team in scope: an approved membership of the user in scope.
CREATE POLICY my_teams ON teams FOR SELECT TO nextier_app
    USING (id IN (SELECT m.team_id FROM team_members m
                  WHERE m.user_id = app_user_id() AND m.status = 'APPROVED'));

ALTER TABLE team_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE team_members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON team_members FOR ALL TO nextier_app
    USING (team_id = app_team_id()) WITH CHECK (team_id = app_team_id());
CREATE POLICY my_memberships ON team_members FOR SELECT TO nextier_app
    USING (user_id = app_user_id());

ALTER TABLE team_invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE team_invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON team_invitations FOR ALL TO nextier_app
    USING (team_id = app_team_id()) WITH CHECK (team_id = app_team_id());

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys FOR ALL TO nextier_app
    USING (team_id = app_team_id()) WITH CHECK (team_id = app_team_id());

ALTER TABLE team_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE team_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON team_settings FOR ALL TO nextier_app
    USING (team_id = app_team_id()) WITH CHECK (team_id = app_team_id());

-- The owner role runs only the vetted SECURITY DEFINER functions below (and migrations).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users','teams','team_members','team_invitations','api_keys','team_settings'] LOOP
        EXECUTE format('CREATE POLICY owner_maintenance ON %I FOR ALL TO nextier_owner USING (true) WITH CHECK (true)', t);
    END LOOP;
END $$;

-- Lookups that precede knowing the team ------------------------------------------------

-- Maps an identity-provider subject to our user id, creating the user on first sight.
CREATE FUNCTION auth_resolve_user(p_new_id text, p_subject text, p_email text, p_name text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE v_id text;
BEGIN
    SELECT id INTO v_id FROM users WHERE subject = p_subject;
    IF v_id IS NOT NULL THEN
        RETURN v_id;
    END IF;
    INSERT INTO users (id, subject, email, name) VALUES (p_new_id, p_subject, p_email, p_name)
        ON CONFLICT (subject) DO NOTHING;
    SELECT id INTO v_id FROM users WHERE subject = p_subject;
    RETURN v_id;
END $$;

-- Resolves a live API key by hash. last_used_at is refreshed at most once a minute so a busy
-- client does not turn every read into a write.
CREATE FUNCTION auth_api_key(p_hash text)
RETURNS TABLE (key_id text, team_id text, scopes text[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE api_keys k SET last_used_at = now()
     WHERE k.key_hash = p_hash AND k.revoked_at IS NULL
       AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute');
    RETURN QUERY
        SELECT k.id::text, k.team_id::text, k.scopes FROM api_keys k
         WHERE k.key_hash = p_hash AND k.revoked_at IS NULL
           AND (k.expires_at IS NULL OR k.expires_at > now());
END $$;

-- Finds an invitation by its token hash (the token itself is never stored).
CREATE FUNCTION auth_invitation(p_token_hash text)
RETURNS TABLE (id text, team_id text, email text, role member_role, expires_at timestamptz,
               accepted_at timestamptz, revoked_at timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT i.id, i.team_id, i.email, i.role, i.expires_at, i.accepted_at, i.revoked_at
      FROM team_invitations i WHERE i.token_hash = p_token_hash
$$;

REVOKE ALL ON FUNCTION auth_resolve_user(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth_api_key(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth_invitation(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_resolve_user(text, text, text, text) TO nextier_app;
GRANT EXECUTE ON FUNCTION auth_api_key(text) TO nextier_app;
GRANT EXECUTE ON FUNCTION auth_invitation(text) TO nextier_app;

GRANT SELECT, UPDATE ON users TO nextier_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON teams, team_members, team_invitations, api_keys, team_settings TO nextier_app;
