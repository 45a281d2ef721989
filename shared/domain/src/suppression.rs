//! Suppressions only get stronger. A number or address on the team's list keeps the strongest
//! kind it was ever given: a revocation of consent (`OPTED_OUT`) or a legal do-not-contact
//! (`LEGAL_DNC`) is never replaced by a weaker kind and never given an expiry; only an ADMIN,
//! with a reason, or the person's own START, lifts one. The database applies the same order
//! (`suppression_rank()` in migration 0013, checked against [`Kind::rank`] by a test).

use std::fmt;

/// What a suppression says, weakest first. Written as `OPTED_OUT` and so on, in the database
/// and in the API alike.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    /// The number reached someone else (a reply or a call said so).
    WrongNumber,
    /// The address bounces (mail).
    Bounced,
    /// The team decided not to contact it.
    Blacklist,
    /// The person revoked consent (STOP, any reasonable means, an unsubscribe).
    OptedOut,
    /// A legal do-not-contact (litigator, court order, a regulator's list).
    LegalDnc,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::WrongNumber, Kind::Bounced, Kind::Blacklist, Kind::OptedOut, Kind::LegalDnc];

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::WrongNumber => "WRONG_NUMBER",
            Kind::Bounced => "BOUNCED",
            Kind::Blacklist => "BLACKLIST",
            Kind::OptedOut => "OPTED_OUT",
            Kind::LegalDnc => "LEGAL_DNC",
        }
    }

    /// Higher is stronger; the order of the list never goes down.
    pub fn rank(self) -> i32 {
        match self {
            Kind::WrongNumber | Kind::Bounced => 1,
            Kind::Blacklist => 2,
            Kind::OptedOut => 3,
            Kind::LegalDnc => 4,
        }
    }

    /// Permanent kinds: never expire, lifted only by an ADMIN with a reason (or START, for an
    /// opt-out).
    pub fn is_permanent(self) -> bool {
        self.rank() >= Kind::OptedOut.rank()
    }

    /// Kinds a person's own request created; anything else blocks as `suppressed: KIND`.
    pub fn is_revocation(self) -> bool {
        self.is_permanent()
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind and expiry that result from adding `new` (with `new_expiry`) over what is there.
/// `existing` is `None` when nothing is there or what was there has lapsed.
pub fn merge<T: Copy + Ord>(
    existing: Option<(Kind, Option<T>)>,
    new: Kind,
    new_expiry: Option<T>,
) -> (Kind, Option<T>) {
    let expiry_for = |k: Kind, e: Option<T>| if k.is_permanent() { None } else { e };
    match existing {
        None => (new, expiry_for(new, new_expiry)),
        Some((old, _)) if new.rank() > old.rank() => (new, expiry_for(new, new_expiry)),
        Some((old, old_expiry)) if new.rank() == old.rank() => {
            // The same kind again lasts as long as the longer of the two.
            let e = match (old_expiry, new_expiry) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
            (old, expiry_for(old, e))
        }
        Some((old, old_expiry)) => (old, expiry_for(old, old_expiry)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weaker_kind_never_replaces_a_stronger_one() {
        for old in Kind::ALL {
            for new in Kind::ALL {
                let (k, _) = merge::<i64>(Some((old, None)), new, None);
                assert!(k.rank() >= old.rank(), "{old} then {new} gave {k}");
                assert!(k.rank() >= new.rank() || k.rank() == old.rank());
            }
        }
    }

    #[test]
    fn permanent_kinds_never_get_an_expiry() {
        for new_expiry in [None, Some(5)] {
            assert_eq!(merge(Some((Kind::OptedOut, None)), Kind::OptedOut, new_expiry), (Kind::OptedOut, None));
            assert_eq!(merge(Some((Kind::LegalDnc, None)), Kind::WrongNumber, new_expiry), (Kind::LegalDnc, None));
            assert_eq!(merge(None, Kind::OptedOut, new_expiry), (Kind::OptedOut, None));
            // Strengthening a temporary kind to a permanent one drops its expiry.
            assert_eq!(merge(Some((Kind::Blacklist, Some(3))), Kind::LegalDnc, new_expiry), (Kind::LegalDnc, None));
        }
    }

    #[test]
    fn the_same_kind_again_lasts_the_longer() {
        assert_eq!(merge(Some((Kind::Blacklist, Some(3))), Kind::Blacklist, Some(9)), (Kind::Blacklist, Some(9)));
        assert_eq!(merge(Some((Kind::Blacklist, Some(9))), Kind::Blacklist, Some(3)), (Kind::Blacklist, Some(9)));
        assert_eq!(merge(Some((Kind::Blacklist, Some(9))), Kind::Blacklist, None), (Kind::Blacklist, None));
        assert_eq!(merge(Some((Kind::Blacklist, None)), Kind::Blacklist, Some(9)), (Kind::Blacklist, None));
        // A weaker kind leaves the stronger one as it was.
        assert_eq!(merge(Some((Kind::Blacklist, Some(9))), Kind::WrongNumber, None), (Kind::Blacklist, Some(9)));
    }

    #[test]
    fn kinds_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("opted_out"), None);
    }
}
