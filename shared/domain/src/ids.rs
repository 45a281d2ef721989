//! Prefixed ULID identifiers (`team_01J…`), as in the original system (DOMAIN.md C.0):
//! at most 36 characters, sortable by creation time, and typed so a team id can never be
//! passed where a user id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;

use crate::FieldError;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn new() -> Self {
                Self(format!("{}_{}", $prefix, Ulid::new()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Parses an id, naming `field` in the error.
            pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
                parse_prefixed($prefix, raw)
                    .map(|_| Self(raw.to_owned()))
                    .ok_or_else(|| FieldError::new(field, format!("must be an id of the form {}_<ULID>", $prefix)))
            }

            /// For values read back from our own database, which only ever holds valid ids.
            pub fn from_trusted(raw: String) -> Self {
                debug_assert!(parse_prefixed($prefix, &raw).is_some(), "invalid stored id {raw}");
                Self(raw)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = FieldError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse("id", s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse("id", &raw).map_err(|e| serde::de::Error::custom(e.message))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[0-9A-HJKMNP-TV-Z]{26}$")))
                    .examples([serde_json::json!(concat!($prefix, "_01JD8Z6Q3M4N5P6R7S8T9V0W1X"))])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

fn parse_prefixed(prefix: &str, raw: &str) -> Option<Ulid> {
    let rest = raw.strip_prefix(prefix)?.strip_prefix('_')?;
    // Ulid::from_string accepts lower case too; ids are canonical upper case only.
    if rest.len() != 26 || rest.bytes().any(|b| b.is_ascii_lowercase()) {
        return None;
    }
    Ulid::from_string(rest).ok()
}

prefixed_id!(/// A tenant.
    TeamId, "team");
prefixed_id!(/// A person who signs in (mapped from the identity provider's subject).
    UserId, "usr");
prefixed_id!(/// A pending or answered team invitation.
    InvitationId, "inv");
prefixed_id!(/// A machine client's key.
    ApiKeyId, "key");
prefixed_id!(/// A row of the transactional outbox.
    OutboxId, "obx");
prefixed_id!(/// A person a team works (one per person per team).
    ContactId, "con");
prefixed_id!(/// Any child row of a contact (phone, email, address, event, merge).
    RowId, "row");
prefixed_id!(/// A CSV import job.
    ImportId, "imp");
prefixed_id!(/// A business (B2B lists).
    BusinessId, "biz");
prefixed_id!(/// A multi-step outreach campaign.
    CampaignId, "cmp");
prefixed_id!(/// One ordered step of a campaign's sequence.
    StepId, "stp");
prefixed_id!(/// A contact's enrolment in a campaign.
    EnrolmentId, "enr");
prefixed_id!(/// A reusable message template.
    TemplateId, "tpl");
prefixed_id!(/// A saved contact filter (an audience).
    FilterId, "flt");
prefixed_id!(/// A message, outbound or inbound.
    MessageId, "msg");
prefixed_id!(/// An inbox item: one reply to work.
    InboxItemId, "inb");
prefixed_id!(/// A webhook delivery as received.
    WebhookEventId, "whk");
prefixed_id!(/// A call-queue entry.
    CallId, "cal");
prefixed_id!(/// A power-dialer session.
    DialerSessionId, "dls");
prefixed_id!(/// An AI-written reply suggestion awaiting a person.
    SuggestionId, "sug");
prefixed_id!(/// An AI worker (a digital SDR) of a team.
    WorkerId, "wrk");
prefixed_id!(/// A line of the opener library (an initial message variant).
    OpenerId, "opn");
prefixed_id!(/// A nurture cadence of one lead with one worker.
    NurtureId, "nur");
prefixed_id!(/// A booked meeting with a lead.
    MeetingId, "mtg");
prefixed_id!(/// A property a team holds (from RealEstateAPI).
    PropertyId, "prp");
prefixed_id!(/// A team's saved property search.
    PropertySearchId, "psr");
prefixed_id!(/// A skip-trace request for some contacts.
    SkipTraceId, "stj");
prefixed_id!(/// An enrichment job: some contacts walked through trace, grade and qualify.
    EnrichmentJobId, "enj");
prefixed_id!(/// A team's workflow (a trigger, conditions and actions).
    WorkflowId, "wf");
prefixed_id!(/// One run of a workflow on one contact.
    WorkflowRunId, "wfr");
prefixed_id!(/// A team's connection to a CRM.
    IntegrationId, "int");
prefixed_id!(/// One push or pull of a CRM connection.
    IntegrationTaskId, "itk");
prefixed_id!(/// A CSV export job.
    ExportId, "exp");
prefixed_id!(/// An endpoint a team registered for our webhooks.
    WebhookEndpointId, "whe");
prefixed_id!(/// One event's delivery to one endpoint (its `webhook-id`, the same on every retry).
    WebhookDeliveryId, "msg");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_round_trip_and_fit_36_chars() {
        let id = TeamId::new();
        assert!(id.as_str().len() <= 36);
        assert_eq!(TeamId::parse("teamId", id.as_str()).unwrap(), id);
    }

    #[test]
    fn wrong_prefix_or_garbage_is_rejected_with_the_field_name() {
        let user = UserId::new();
        let err = TeamId::parse("teamId", user.as_str()).unwrap_err();
        assert_eq!(err.field, "teamId");
        for bad in [
            "",
            "team_",
            "team_123",
            "team_01JD8Z6Q3M4N5P6R7S8T9V0W1X'--",
            "TEAM_01JD8Z6Q3M4N5P6R7S8T9V0W1X",
            "team_01jd8z6q3m4n5p6r7s8t9v0w1x",
        ] {
            assert!(TeamId::parse("teamId", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = OutboxId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = OutboxId::new();
        assert!(a < b);
    }
}
