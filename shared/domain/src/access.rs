//! Who may do what in a team. A person's power comes from their role; a machine client's
//! from the scopes on its API key. Every team route names the one permission it needs.

use serde::Serialize;

use crate::api_key::Scope;
use crate::team::Role;

/// What a route needs. Reads are open to every member; changing people, keys and settings
/// needs ADMIN; deleting the team needs OWNER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Permission {
    TeamRead,
    TeamManage,
    MembersRead,
    MembersManage,
    KeysManage,
    SettingsRead,
    SettingsManage,
    SecretsRead,
    ContactsRead,
    ContactsWrite,
    ContactsManage,
    /// See campaigns, steps, enrolments, stats and history.
    CampaignsRead,
    /// Create and edit campaigns, steps, templates and audiences; stage; pause (a brake is
    /// always safe to pull).
    CampaignsWrite,
    /// Approve, start, resume, complete and cancel: what makes messages go out, or ends a
    /// campaign for good.
    CampaignsManage,
    /// Read messages and threads.
    MessagesRead,
    /// Send a message to a contact (through the outbound gate).
    MessagesSend,
    /// See the inbox: items, conversations, buckets, stats; preview a classification.
    InboxRead,
    /// Work the inbox: move, process, escalate.
    InboxWrite,
    /// See the call queue, call history and dialer sessions.
    CallsRead,
    /// Push, claim and complete calls; run dialer sessions.
    CallsWrite,
    /// Start and cancel enrichment jobs: paid provider calls, bounded by the team's daily caps.
    EnrichmentRun,
    /// Configure the AI workers: personas, numbers, prompts and auto-send policies (a policy
    /// that sends on its own is changed by a person only, never an API key).
    AiManage,
    /// Connect and sync a CRM, register webhook endpoints and read their delivery logs: each
    /// sends the team's data to another system.
    IntegrationsManage,
    /// Export contacts, inbox items and messages as files.
    DataExport,
}

/// What a reader of the team's live feed must hold to see an event of this type: the same
/// permission that reads the thing the event is about. A type not named here is an admin's.
pub fn feed_permission(event_type: &str) -> Permission {
    use Permission::*;
    match event_type {
        "InboundMessageReceived" | "InboxItemMoved" | "InboxItemSLABreached" => InboxRead,
        t if t.starts_with("Campaign") => CampaignsRead,
        "SendingNumberUnhealthy" | "ProviderConfigurationFault" => CampaignsRead,
        "ImportProgress"
        | "ImportCompleted"
        | "EnrichmentJobCompleted"
        | "ContactLeadStateChanged"
        | "ContactOptedOut"
        | "ContactsMerged" => ContactsRead,
        "MeetingBooked" | "CallQueued" => CallsRead,
        "TeamCreated" | "MemberJoined" => TeamRead,
        _ => TeamManage,
    }
}

impl Permission {
    /// The least role that holds this permission.
    pub fn min_role(self) -> Role {
        match self {
            Permission::TeamRead
            | Permission::MembersRead
            | Permission::SettingsRead
            | Permission::ContactsRead
            | Permission::ContactsWrite
            | Permission::CampaignsRead
            | Permission::CampaignsWrite
            | Permission::MessagesRead
            | Permission::MessagesSend
            | Permission::InboxRead
            | Permission::InboxWrite
            | Permission::CallsRead
            | Permission::CallsWrite
            | Permission::EnrichmentRun => Role::Member,
            Permission::TeamManage
            | Permission::MembersManage
            | Permission::KeysManage
            | Permission::SettingsManage
            | Permission::SecretsRead
            | Permission::ContactsManage
            | Permission::CampaignsManage
            | Permission::AiManage
            | Permission::IntegrationsManage
            | Permission::DataExport => Role::Admin,
        }
    }

    /// The API-key scope that holds this permission (besides `*`).
    pub fn scope(self) -> Scope {
        match self {
            Permission::TeamRead | Permission::MembersRead => Scope::parse_known("team:read"),
            Permission::TeamManage | Permission::MembersManage => Scope::parse_known("team:manage"),
            Permission::KeysManage => Scope::parse_known("keys:manage"),
            Permission::SettingsRead => Scope::parse_known("settings:read"),
            Permission::SettingsManage | Permission::SecretsRead => Scope::parse_known("settings:manage"),
            Permission::ContactsRead => Scope::parse_known("contacts:read"),
            Permission::ContactsWrite => Scope::parse_known("contacts:write"),
            Permission::ContactsManage => Scope::parse_known("contacts:manage"),
            Permission::CampaignsRead => Scope::parse_known("campaigns:read"),
            Permission::CampaignsWrite => Scope::parse_known("campaigns:write"),
            Permission::CampaignsManage => Scope::parse_known("campaigns:manage"),
            Permission::MessagesRead => Scope::parse_known("messages:read"),
            Permission::MessagesSend => Scope::parse_known("messages:send"),
            Permission::InboxRead => Scope::parse_known("inbox:read"),
            Permission::InboxWrite => Scope::parse_known("inbox:write"),
            Permission::CallsRead => Scope::parse_known("calls:read"),
            Permission::CallsWrite => Scope::parse_known("calls:write"),
            Permission::EnrichmentRun => Scope::parse_known("enrichment:execute"),
            Permission::AiManage => Scope::parse_known("ai:manage"),
            Permission::IntegrationsManage => Scope::parse_known("integrations:manage"),
            Permission::DataExport => Scope::parse_known("data:export"),
        }
    }
}

/// The authority of whoever is calling a team route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    Member(Role),
    Key(Vec<Scope>),
}

impl Authority {
    pub fn allows(&self, permission: Permission) -> bool {
        match self {
            Authority::Member(role) => *role >= permission.min_role(),
            Authority::Key(scopes) => {
                let needed = permission.scope();
                scopes.iter().any(|s| s.is_wildcard() || *s == needed || s.implies(&needed))
            }
        }
    }

    /// A person acting through their role, not a machine client.
    pub fn is_person(&self) -> bool {
        matches!(self, Authority::Member(_))
    }

    /// Whether this caller may give someone `role`. ADMIN and OWNER power is granted by
    /// people only: a leaked API key must not be able to make anyone an administrator.
    pub fn check_role_grant(&self, role: Role) -> Result<(), String> {
        if role >= Role::Admin && !self.is_person() {
            return Err(format!("only a person can grant {role}; API keys cannot"));
        }
        Ok(())
    }

    /// Whether this caller may create an API key with `scopes`. A key never mints a key more
    /// powerful than itself, and never one with administrative scopes (`*` or any
    /// `…:manage`): those are created by a person.
    pub fn check_key_grant(&self, scopes: &[Scope]) -> Result<(), String> {
        let Authority::Key(own) = self else {
            return Ok(());
        };
        if let Some(s) = scopes.iter().find(|s| s.is_administrative()) {
            return Err(format!("only a person can create a key with the scope {}; API keys cannot", s.as_str()));
        }
        match scopes.iter().find(|s| !own.iter().any(|o| o.is_wildcard() || o == *s || o.implies(s))) {
            Some(s) => Err(format!("this API key cannot grant {}, which it does not hold", s.as_str())),
            None => Ok(()),
        }
    }

    /// The role used for rules that compare roles (e.g. only an OWNER touches owners).
    /// A key never counts as an owner.
    pub fn effective_role(&self) -> Role {
        match self {
            Authority::Member(role) => *role,
            Authority::Key(_) => Role::Admin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_read_but_do_not_manage() {
        let m = Authority::Member(Role::Member);
        assert!(m.allows(Permission::TeamRead));
        assert!(m.allows(Permission::SettingsRead));
        assert!(!m.allows(Permission::MembersManage));
        assert!(!m.allows(Permission::SecretsRead));
        assert!(Authority::Member(Role::Admin).allows(Permission::KeysManage));
    }

    #[test]
    fn keys_need_the_matching_scope() {
        let read = Authority::Key(vec![Scope::parse_known("settings:read")]);
        assert!(read.allows(Permission::SettingsRead));
        assert!(!read.allows(Permission::SettingsManage));
        let manage = Authority::Key(vec![Scope::parse_known("settings:manage")]);
        assert!(manage.allows(Permission::SettingsRead), "manage implies read");
        assert!(Authority::Key(vec![Scope::parse_known("*")]).allows(Permission::KeysManage));
        assert!(!Authority::Key(vec![]).allows(Permission::TeamRead));
    }

    #[test]
    fn only_people_grant_admin_power() {
        let everything = Authority::Key(vec![Scope::parse_known("*")]);
        assert!(everything.check_role_grant(Role::Admin).is_err());
        assert!(everything.check_role_grant(Role::Owner).is_err());
        assert!(everything.check_role_grant(Role::Member).is_ok());
        assert!(Authority::Member(Role::Admin).check_role_grant(Role::Admin).is_ok());
    }

    #[test]
    fn keys_mint_only_narrower_keys_without_manage_scopes() {
        let everything = Authority::Key(vec![Scope::parse_known("*")]);
        assert!(everything.check_key_grant(&[Scope::parse_known("*")]).is_err());
        assert!(everything.check_key_grant(&[Scope::parse_known("keys:manage")]).is_err());
        assert!(everything.check_key_grant(&[Scope::parse_known("contacts:read")]).is_ok());
        let narrow = Authority::Key(vec![Scope::parse_known("contacts:write"), Scope::parse_known("keys:manage")]);
        assert!(narrow.check_key_grant(&[Scope::parse_known("contacts:read")]).is_ok());
        assert!(narrow.check_key_grant(&[Scope::parse_known("calls:read")]).is_err());
        let person = Authority::Member(Role::Admin);
        assert!(person.check_key_grant(&[Scope::parse_known("*")]).is_ok());
    }
}
