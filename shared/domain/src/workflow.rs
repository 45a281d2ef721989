//! Workflows (DOMAIN.md C.7, issue 18): a team's "when this happens to a contact, if they look
//! like this, do these things". A trigger names the event; conditions read the contact; the
//! actions run in order, and a `wait` puts the rest off. What a workflow is, how it is checked,
//! which events start it and when an event would start it again in a loop: pure rules, here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::inbox::{Bucket, Classification};
use crate::lead_state::LeadState;
use crate::FieldError;

/// The longest chain of workflows an event may set off (an action's event starting another
/// workflow, and so on) before the chain is stopped as a loop.
pub const MAX_DEPTH: i64 = 5;
/// At most this many actions in one workflow.
pub const MAX_ACTIONS: usize = 20;

/// What starts a workflow, and the bus events each comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// A contact was created (through the API).
    ContactCreated,
    /// Each contact an import created, once the import completed.
    ContactImported,
    /// A tag was added to a contact (`tag`: that tag only).
    TagAdded {
        tag: String,
    },
    /// A contact's lead state changed (`to`: into that state only).
    LeadStateChanged {
        #[serde(default)]
        to: Option<String>,
    },
    /// A reply was classified (`classification`: that class only, e.g. `POSITIVE`).
    ReplyClassified {
        #[serde(default)]
        classification: Option<String>,
    },
    /// An inbox item moved (`to`: into that bucket only).
    InboxItemMoved {
        #[serde(default)]
        to: Option<String>,
    },
    /// No reply `days` days after a campaign message was sent.
    NoReply {
        days: i64,
    },
    MeetingBooked,
    /// An inbox item went past its bucket's SLA.
    SlaBreached,
}

/// The workflow consumer's queue.
pub const QUEUE: &str = "workflow-events";

/// The bus events the workflow consumer reads (the template's EventBridge rule routes exactly
/// these to its queue).
pub const EVENTS: &[&str] = &[
    "ContactCreated",
    "ImportCompleted",
    "ContactTagged",
    "ContactLeadStateChanged",
    "InboundMessageReceived",
    "InboxItemMoved",
    "MeetingBooked",
    "InboxItemSLABreached",
];

impl Trigger {
    /// The bus event that starts it (`None`: the timer finds it).
    pub fn event(&self) -> Option<&'static str> {
        Some(match self {
            Trigger::ContactCreated => "ContactCreated",
            Trigger::ContactImported => "ImportCompleted",
            Trigger::TagAdded { .. } => "ContactTagged",
            Trigger::LeadStateChanged { .. } => "ContactLeadStateChanged",
            Trigger::ReplyClassified { .. } => "InboundMessageReceived",
            Trigger::InboxItemMoved { .. } => "InboxItemMoved",
            Trigger::NoReply { .. } => return None,
            Trigger::MeetingBooked => "MeetingBooked",
            Trigger::SlaBreached => "InboxItemSLABreached",
        })
    }

    /// Whether an event of its type (with `data`) starts it.
    pub fn matches(&self, detail_type: &str, data: &Value) -> bool {
        if self.event() != Some(detail_type) {
            return false;
        }
        let is = |key: &str, want: &Option<String>| {
            want.as_deref()
                .is_none_or(|w| data.get(key).and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case(w)))
        };
        match self {
            Trigger::TagAdded { tag } => {
                data.get("tag").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(tag))
            }
            Trigger::LeadStateChanged { to } => is("to", to),
            Trigger::ReplyClassified { classification } => is("classification", classification),
            Trigger::InboxItemMoved { to } => is("to", to),
            _ => true,
        }
    }

    fn check(&self, out: &mut Vec<FieldError>) {
        match self {
            Trigger::TagAdded { tag } => check_tag("trigger.tag", tag, out),
            Trigger::LeadStateChanged { to: Some(s) } if s.parse::<LeadState>().is_err() => {
                out.push(FieldError::new("trigger.to", "not a lead state"))
            }
            Trigger::ReplyClassified { classification: Some(c) }
                if !Classification::ALL.iter().any(|x| x.as_str() == c) =>
            {
                out.push(FieldError::new("trigger.classification", "not a classification (POSITIVE, DNC_REQUEST...)"))
            }
            Trigger::InboxItemMoved { to: Some(b) } if Bucket::parse(b).is_none() => {
                out.push(FieldError::new("trigger.to", "not an inbox bucket"))
            }
            Trigger::NoReply { days } if !(1..=90).contains(days) => {
                out.push(FieldError::new("trigger.days", "1 to 90 days"))
            }
            _ => {}
        }
    }
}

/// What a contact must look like for the workflow to run on it (all must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Conditions {
    #[serde(default)]
    pub min_score: Option<i32>,
    #[serde(default)]
    pub max_score: Option<i32>,
    /// Every one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// None of these tags.
    #[serde(default)]
    pub without_tags: Vec<String>,
    /// One of these lead states.
    #[serde(default)]
    pub lead_states: Vec<String>,
    /// The contact's field equals the value (`firstName`, `state`, `custom.<key>`...).
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, String>,
}

/// What a contact is, as conditions read it.
#[derive(Debug, Clone, Default)]
pub struct ContactFacts {
    pub score: i32,
    pub tags: Vec<String>,
    pub lead_state: String,
}

impl Conditions {
    /// Whether the contact meets them (`field` reads a merge field of the contact).
    pub fn hold(&self, c: &ContactFacts, field: impl Fn(&str) -> Option<String>) -> bool {
        let has = |t: &str| c.tags.iter().any(|x| x.eq_ignore_ascii_case(t));
        self.min_score.is_none_or(|m| c.score >= m)
            && self.max_score.is_none_or(|m| c.score <= m)
            && self.tags.iter().all(|t| has(t))
            && !self.without_tags.iter().any(|t| has(t))
            && (self.lead_states.is_empty() || self.lead_states.iter().any(|s| s == &c.lead_state))
            && self.fields.iter().all(|(k, v)| field(k).is_some_and(|x| x.trim().eq_ignore_ascii_case(v.trim())))
    }

    fn check(&self, out: &mut Vec<FieldError>) {
        for (name, v) in [("conditions.minScore", self.min_score), ("conditions.maxScore", self.max_score)] {
            if v.is_some_and(|s| !(0..=100).contains(&s)) {
                out.push(FieldError::new(name, "0 to 100"));
            }
        }
        for (i, t) in self.tags.iter().enumerate() {
            check_tag(&format!("conditions.tags[{i}]"), t, out);
        }
        for (i, t) in self.without_tags.iter().enumerate() {
            check_tag(&format!("conditions.withoutTags[{i}]"), t, out);
        }
        for (i, s) in self.lead_states.iter().enumerate() {
            if s.parse::<LeadState>().is_err() {
                out.push(FieldError::new(format!("conditions.leadStates[{i}]"), "not a lead state"));
            }
        }
        for k in self.fields.keys() {
            if crate::template::Template::parse(&format!("{{{{{k}}}}}")).is_err() {
                out.push(FieldError::new(format!("conditions.fields.{k}"), "not a contact field"));
            }
        }
    }
}

/// One thing a workflow does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Enrol the contact in a campaign (skipped, with the reason, if it cannot be).
    EnrolInCampaign {
        #[serde(rename = "campaignId")]
        campaign_id: String,
    },
    AddTag {
        tag: String,
    },
    RemoveTag {
        tag: String,
    },
    /// Move the lead state (only along the transition table).
    SetLeadState {
        to: String,
    },
    /// Move the event's inbox item (else the contact's latest open one) into a bucket.
    MoveInboxItem {
        to: String,
    },
    /// Put the contact in the call queue.
    PushToCallQueue {
        #[serde(default)]
        reason: Option<String>,
    },
    /// Mail the team's owners and admins a note about the contact (never anyone outside it).
    Notify {
        message: String,
    },
    /// Put the rest off: `hours`, or `businessDays` (skipping Saturday and Sunday).
    Wait {
        #[serde(default)]
        hours: Option<i64>,
        #[serde(default, rename = "businessDays")]
        business_days: Option<i64>,
    },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::EnrolInCampaign { .. } => "enrol_in_campaign",
            Action::AddTag { .. } => "add_tag",
            Action::RemoveTag { .. } => "remove_tag",
            Action::SetLeadState { .. } => "set_lead_state",
            Action::MoveInboxItem { .. } => "move_inbox_item",
            Action::PushToCallQueue { .. } => "push_to_call_queue",
            Action::Notify { .. } => "notify",
            Action::Wait { .. } => "wait",
        }
    }

    fn check(&self, at: &str, out: &mut Vec<FieldError>) {
        match self {
            Action::EnrolInCampaign { campaign_id } if !campaign_id.starts_with("cmp_") => {
                out.push(FieldError::new(format!("{at}.campaignId"), "a campaign id (cmp_...)"))
            }
            Action::AddTag { tag } | Action::RemoveTag { tag } => check_tag(&format!("{at}.tag"), tag, out),
            Action::SetLeadState { to } if to.parse::<LeadState>().is_err() => {
                out.push(FieldError::new(format!("{at}.to"), "not a lead state"))
            }
            Action::SetLeadState { to } if to == LeadState::Suppressed.as_str() => out.push(FieldError::new(
                format!("{at}.to"),
                "suppressing a contact is a person's decision (or the contact's own), not a workflow's",
            )),
            Action::MoveInboxItem { to } if Bucket::parse(to).is_none() => {
                out.push(FieldError::new(format!("{at}.to"), "not an inbox bucket"))
            }
            Action::Notify { message } if message.trim().is_empty() || message.chars().count() > 1000 => {
                out.push(FieldError::new(format!("{at}.message"), "1 to 1,000 characters"))
            }
            Action::MoveInboxItem { to } if Bucket::parse(to).is_some_and(|b| b.suppresses().is_some()) => {
                out.push(FieldError::new(
                    format!("{at}.to"),
                    "moving into a bucket that suppresses the contact is a person's decision, not a workflow's",
                ))
            }
            Action::Wait { hours, business_days } => match (hours, business_days) {
                (Some(h), None) if (1..=24 * 90).contains(h) => {}
                (None, Some(d)) if (1..=60).contains(d) => {}
                _ => out.push(FieldError::new(
                    at.to_owned(),
                    "a wait is either hours (1 to 2,160) or businessDays (1 to 60)",
                )),
            },
            _ => {}
        }
    }

    /// Whether doing this would start a workflow with `trigger` (for the loop check).
    fn starts(&self, trigger: &Trigger) -> bool {
        match (self, trigger) {
            (Action::AddTag { tag }, Trigger::TagAdded { tag: t }) => tag.eq_ignore_ascii_case(t),
            (Action::SetLeadState { to }, Trigger::LeadStateChanged { to: t }) => {
                t.as_deref().is_none_or(|t| t.eq_ignore_ascii_case(to))
            }
            (Action::MoveInboxItem { to }, Trigger::InboxItemMoved { to: t }) => {
                t.as_deref().is_none_or(|t| t.eq_ignore_ascii_case(to))
            }
            _ => false,
        }
    }
}

fn check_tag(field: &str, tag: &str, out: &mut Vec<FieldError>) {
    if tag.trim().is_empty() || tag.chars().count() > 50 || tag.chars().any(char::is_control) {
        out.push(FieldError::new(field, "a tag of 1 to 50 characters"));
    }
}

/// Checks a workflow as a whole: each part, and that its own actions would not start it again
/// (a loop refused at once; longer chains through other workflows are stopped as they run).
pub fn check(trigger: &Trigger, conditions: &Conditions, actions: &[Action]) -> Vec<FieldError> {
    let mut out = Vec::new();
    trigger.check(&mut out);
    conditions.check(&mut out);
    if actions.is_empty() || actions.len() > MAX_ACTIONS {
        out.push(FieldError::new("actions", format!("1 to {MAX_ACTIONS} actions")));
    }
    for (i, a) in actions.iter().enumerate() {
        a.check(&format!("actions[{i}]"), &mut out);
        if a.starts(trigger) {
            out.push(FieldError::new(
                format!("actions[{i}]"),
                "this action would start the workflow again on the same contact: a loop",
            ));
        }
    }
    if matches!(actions.last(), Some(Action::Wait { .. })) {
        out.push(FieldError::new(format!("actions[{}]", actions.len() - 1), "a workflow cannot end with a wait"));
    }
    out
}

/// Where an event sits in a chain of workflows: the workflows that led to it, oldest first.
/// Carried in an event's data as `workflowChain` by the actions a workflow takes.
pub fn chain(data: &Value) -> Vec<String> {
    data.get("workflowChain")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).take(MAX_DEPTH as usize + 1).collect())
        .unwrap_or_default()
}

/// Why a chain must stop before `workflow` runs on it, if it must.
pub fn loop_stop(chain: &[String], workflow: &str) -> Option<String> {
    if chain.iter().any(|w| w == workflow) {
        return Some(format!("loop: this workflow already ran earlier in the chain ({})", chain.join(" → ")));
    }
    if chain.len() as i64 >= MAX_DEPTH {
        return Some(format!("loop: a chain of {} workflows is stopped ({})", chain.len(), chain.join(" → ")));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn triggers_match_their_event_and_its_filter() {
        let t = Trigger::ReplyClassified { classification: Some("POSITIVE".into()) };
        assert!(t.matches("InboundMessageReceived", &json!({"classification": "POSITIVE"})));
        assert!(!t.matches("InboundMessageReceived", &json!({"classification": "NEGATIVE"})));
        assert!(!t.matches("InboxItemMoved", &json!({"classification": "POSITIVE"})));
        let any = Trigger::LeadStateChanged { to: None };
        assert!(any.matches("ContactLeadStateChanged", &json!({"to": "responded"})));
        assert_eq!(Trigger::NoReply { days: 3 }.event(), None);
        for t in [Trigger::ContactCreated, Trigger::MeetingBooked, Trigger::SlaBreached, Trigger::ContactImported] {
            assert!(EVENTS.contains(&t.event().unwrap()));
        }
    }

    #[test]
    fn a_workflow_that_restarts_itself_is_refused_and_bad_parts_are_named() {
        let t: Trigger = serde_json::from_value(json!({"type": "tag_added", "tag": "hot"})).unwrap();
        let a: Vec<Action> = serde_json::from_value(json!([{"type": "add_tag", "tag": "HOT"}])).unwrap();
        let e = check(&t, &Conditions::default(), &a);
        assert_eq!(e[0].field, "actions[0]", "{e:?}");
        let a: Vec<Action> = serde_json::from_value(json!([
            {"type": "set_lead_state", "to": "nowhere"}, {"type": "wait", "hours": 0}, {"type": "wait", "businessDays": 2}
        ]))
        .unwrap();
        let fields: Vec<String> =
            check(&Trigger::MeetingBooked, &Conditions::default(), &a).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, vec!["actions[0].to", "actions[1]", "actions[2]"]);
        assert!(serde_json::from_value::<Action>(json!({"type": "launch_missiles"})).is_err());
    }

    #[test]
    fn chains_stop_on_a_repeat_or_past_the_depth() {
        let c = chain(&json!({"workflowChain": ["wf_a", "wf_b"]}));
        assert!(loop_stop(&c, "wf_a").unwrap().contains("already ran"));
        assert_eq!(loop_stop(&c, "wf_c"), None);
        let long: Vec<String> = (0..MAX_DEPTH).map(|i| format!("wf_{i}")).collect();
        assert!(loop_stop(&long, "wf_x").is_some());
    }

    #[test]
    fn conditions_read_the_contact() {
        let c = ContactFacts { score: 70, tags: vec!["FL".into()], lead_state: "responded".into() };
        let cond = Conditions {
            min_score: Some(50),
            tags: vec!["fl".into()],
            without_tags: vec!["dnc".into()],
            lead_states: vec!["responded".into()],
            fields: [("state".to_owned(), "fl".to_owned())].into(),
            ..Default::default()
        };
        assert!(cond.hold(&c, |f| (f == "state").then(|| "FL".to_owned())));
        assert!(!cond.hold(&c, |_| None));
        assert!(!Conditions { max_score: Some(60), ..Default::default() }.hold(&c, |_| None));
    }
}
