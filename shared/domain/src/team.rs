use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validation::text;
use crate::FieldError;

/// A team's display name: 1-100 characters of any script, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamName(String);

impl TeamName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        text(field, raw, 1, 100).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// URL-friendly slug: ASCII letters and digits from the name plus a random suffix so two
    /// teams named alike never collide (the original's slugify + 6 hex).
    pub fn slug(&self, suffix: &str) -> String {
        let mut base = String::new();
        for c in self.0.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                base.push(c);
            } else if !base.ends_with('-') && !base.is_empty() {
                base.push('-');
            }
        }
        let base: String = base.trim_end_matches('-').chars().take(40).collect();
        let base = base.trim_end_matches('-');
        if base.is_empty() {
            format!("team-{suffix}")
        } else {
            format!("{base}-{suffix}")
        }
    }
}

/// A member's role in a team. Ordered: an OWNER can do all an ADMIN can, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "MEMBER",
            Role::Admin => "ADMIN",
            Role::Owner => "OWNER",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        raw.parse().map_err(|_| FieldError::new(field, "must be one of OWNER, ADMIN, MEMBER"))
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "MEMBER" => Ok(Role::Member),
            "ADMIN" => Ok(Role::Admin),
            "OWNER" => Ok(Role::Owner),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum MemberStatus {
    Pending,
    Approved,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Pending => "PENDING",
            MemberStatus::Approved => "APPROVED",
        }
    }

    pub fn from_db(s: &str) -> Self {
        if s == "APPROVED" {
            MemberStatus::Approved
        } else {
            MemberStatus::Pending
        }
    }
}

/// Why a membership change is refused, whoever asks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipRule {
    #[error("a team must keep at least one OWNER")]
    LastOwner,
    #[error("only an OWNER can grant or take away the OWNER role")]
    OwnerOnly,
}

/// Checks a role change against the team's invariants. `owners` is the current number of
/// approved owners, `actor` the role of whoever asks.
pub fn check_role_change(actor: Role, from: Role, to: Role, owners: i64) -> Result<(), MembershipRule> {
    if (from == Role::Owner || to == Role::Owner) && actor != Role::Owner {
        return Err(MembershipRule::OwnerOnly);
    }
    if from == Role::Owner && to != Role::Owner && owners <= 1 {
        return Err(MembershipRule::LastOwner);
    }
    Ok(())
}

/// Checks that removing a member with `role` keeps the team governable.
pub fn check_removal(actor: Role, role: Role, owners: i64) -> Result<(), MembershipRule> {
    if role == Role::Owner && actor != Role::Owner {
        return Err(MembershipRule::OwnerOnly);
    }
    if role == Role::Owner && owners <= 1 {
        return Err(MembershipRule::LastOwner);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_is_ascii_and_suffixed() {
        let name = TeamName::parse("name", "Acme Roofing & Sons — NYC 🚀").unwrap();
        assert_eq!(name.slug("a1b2c3"), "acme-roofing-sons-nyc-a1b2c3");
        let emoji_only = TeamName::parse("name", "🚀🚀").unwrap();
        assert_eq!(emoji_only.slug("a1b2c3"), "team-a1b2c3");
    }

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        assert_eq!(Role::parse("role", "ADMIN").unwrap(), Role::Admin);
        assert_eq!(Role::parse("role", "admin").unwrap_err().field, "role");
    }

    #[test]
    fn the_last_owner_cannot_be_demoted_or_removed() {
        assert_eq!(check_role_change(Role::Owner, Role::Owner, Role::Admin, 1), Err(MembershipRule::LastOwner));
        assert_eq!(check_role_change(Role::Owner, Role::Owner, Role::Admin, 2), Ok(()));
        assert_eq!(check_removal(Role::Owner, Role::Owner, 1), Err(MembershipRule::LastOwner));
    }

    #[test]
    fn only_owners_touch_the_owner_role() {
        assert_eq!(check_role_change(Role::Admin, Role::Member, Role::Owner, 1), Err(MembershipRule::OwnerOnly));
        assert_eq!(check_role_change(Role::Admin, Role::Owner, Role::Member, 2), Err(MembershipRule::OwnerOnly));
        assert_eq!(check_role_change(Role::Admin, Role::Member, Role::Admin, 1), Ok(()));
        assert_eq!(check_removal(Role::Admin, Role::Owner, 3), Err(MembershipRule::OwnerOnly));
    }
}
