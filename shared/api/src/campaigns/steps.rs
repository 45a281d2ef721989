//! A campaign's ordered steps. Editing them after approval sends the campaign back to
//! STAGED; while it runs, edits are refused (pause first).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use nextier_campaigns::lifecycle::{self, Who};
use nextier_domain::access::Permission;
use nextier_domain::campaign::Delay;
use nextier_domain::ids::{CampaignId, StepId, TeamId, TemplateId};
use nextier_domain::template::Template;
use nextier_domain::FieldError;
use nextier_http::{open_team, ApiError, Credential, Ids, JsonBody, TeamAccess};
use nextier_store::campaigns::{self, Channel, Step, StepContent};
use nextier_store::parents::Parent;
use nextier_store::{StoreError, Tx};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{lifecycle_err, who};
use crate::contacts::input::Problems;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_steps, add_step)).routes(routes!(update_step, delete_step))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StepInput {
    /// SMS, EMAIL or VOICE (taken from the template when `templateId` is given).
    #[schema(value_type = Option<String>)]
    channel: Option<Channel>,
    /// After the previous step (the first step: after the start), e.g. `{"unit": "business_days", "amount": 2}`.
    /// Units: minutes, hours, days, business_days. Default: no delay.
    delay: Option<Delay>,
    /// Email only; may use merge fields.
    subject: Option<String>,
    /// The message, with merge fields like `{{firstName}}` or `{{firstName|there}}`.
    body: Option<String>,
    /// Copy subject and body from a message template.
    template_id: Option<String>,
    /// Draw from the opener library (SMS): the category's active variants are kept on the
    /// step as they are now, and each send picks one by weight (A/B), counted per variant.
    opener_category: Option<String>,
    /// 1-based position; new steps default to the end.
    position: Option<i32>,
}

pub const MAX_BODY: [(Channel, usize); 3] = [(Channel::Sms, 1600), (Channel::Voice, 3000), (Channel::Email, 100_000)];

fn max_body(c: Channel) -> usize {
    MAX_BODY.iter().find(|(ch, _)| *ch == c).map(|(_, n)| *n).unwrap_or(1600)
}

fn check_delay(p: &mut Problems, d: Delay) {
    let (n, max, unit) = match d {
        Delay::Minutes(n) => (n, 525_600, "minutes"),
        Delay::Hours(n) => (n, 8760, "hours"),
        Delay::Days(n) => (n, 365, "days"),
        Delay::BusinessDays(n) => (n, 260, "business days"),
    };
    if n > max {
        p.0.push(FieldError::new("delay.amount", format!("at most {max} {unit} (a year)")));
    }
}

/// Validates content: every template parses, the body fits the channel, only email has a
/// subject and email must have one.
pub fn check_content(p: &mut Problems, channel: Channel, subject: Option<&str>, body: &str) {
    if body.trim().is_empty() {
        p.0.push(FieldError::new("body", "must not be empty"));
    } else if body.chars().count() > max_body(channel) {
        p.0.push(FieldError::new(
            "body",
            format!("must be at most {} characters for {}", max_body(channel), channel.as_str()),
        ));
    } else if let Err(e) = nextier_domain::validation::message_text("body", body, max_body(channel)) {
        p.0.push(e);
    } else if let Err(e) = Template::parse(body) {
        p.0.push(FieldError::new("body", e.to_string()));
    }
    match (channel, subject) {
        (Channel::Email, None) => p.0.push(FieldError::new("subject", "an email step needs a subject")),
        (Channel::Email, Some(s)) if s.trim().is_empty() => p.0.push(FieldError::new("subject", "must not be empty")),
        (Channel::Email, Some(s)) if s.chars().count() > 200 => {
            p.0.push(FieldError::new("subject", "must be at most 200 characters"))
        }
        (Channel::Email, Some(s)) if s.chars().any(char::is_control) => {
            p.0.push(FieldError::new("subject", "must not contain control characters"))
        }
        (Channel::Email, Some(s)) => {
            if let Err(e) = Template::parse(s) {
                p.0.push(FieldError::new("subject", e.to_string()));
            }
        }
        (_, Some(_)) => p.0.push(FieldError::new("subject", "only email steps have a subject")),
        (_, None) => {}
    }
}

/// Every problem of a step's content, delay and position at once.
fn validated(content: StepContent, position: Option<i32>) -> Result<StepContent, ApiError> {
    let mut problems = Problems::default();
    check_content(&mut problems, content.channel, content.subject.as_deref(), &content.body);
    for (i, v) in content.variants.iter().enumerate() {
        let mut p = Problems::default();
        check_content(&mut p, content.channel, None, &v.body);
        problems.0.extend(p.0.into_iter().map(|e| e.at(format!("variants[{i}].body"))));
    }
    check_delay(&mut problems, content.delay);
    if position.is_some_and(|p| p < 1) {
        problems.0.push(FieldError::new("position", "must be 1 or more"));
    }
    problems.finish()?;
    Ok(content)
}

/// The opener library's category as a step: its active variants, the first one's body shown
/// as the step's.
async fn opener_content(tx: &Tx<'_>, raw: &str) -> Result<(String, Vec<nextier_store::openers::Variant>), ApiError> {
    let category = raw.trim();
    let variants = nextier_store::openers::snapshot(tx, category).await?;
    if variants.is_empty() {
        return Err(ApiError::field("openerCategory", "no active opener with a weight in this category"));
    }
    Ok((category.to_owned(), variants))
}

async fn template_content(tx: &Tx<'_>, raw: &str) -> Result<(Channel, Option<String>, String, TemplateId), ApiError> {
    let id = TemplateId::parse("templateId", raw)?;
    let t = campaigns::get_template(tx, &id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::field("templateId", "no such template in this team"),
        other => other.into(),
    })?;
    Ok((t.channel, t.subject, t.body, id))
}

/// Opens the team, locks the campaign and checks it may be edited.
async fn open_for_edit<'c>(
    conn: &'c mut deadpool_postgres::Object,
    cred: &Credential,
    team: &TeamId,
    campaign: &CampaignId,
) -> Result<(deadpool_postgres::Transaction<'c>, TeamAccess), ApiError> {
    let (tx, access) = open_team(conn, cred, team, Permission::CampaignsWrite).await?;
    let c = campaigns::lock(&tx, campaign).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::NotFound("no such campaign".into()),
        other => other.into(),
    })?;
    lifecycle::editable(&c, "steps").map_err(lifecycle_err)?;
    Ok((tx, access))
}

async fn finish_edit(
    tx: deadpool_postgres::Transaction<'_>,
    app: &AppState,
    access: &TeamAccess,
    team: &TeamId,
    campaign: &CampaignId,
) -> Result<(), ApiError> {
    let (label, user, admin) = who(access);
    let w = Who { label: &label, user: user.as_ref(), admin };
    let moved = lifecycle::after_edit(&tx, team, campaign, "steps", w, app.clock.now()).await.map_err(lifecycle_err)?;
    tx.commit().await?;
    if let Some(m) = moved {
        app.outbox.publish(&[m.event]).await;
    }
    Ok(())
}

#[utoipa::path(get, path = "/teams/{teamId}/campaigns/{campaignId}/steps", tag = "campaigns",
    params(("teamId" = String, Path), ("campaignId" = String, Path)),
    responses((status = 200, description = "The steps in order", body = Vec<Step>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_steps(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, CampaignId)>,
) -> Result<Json<Vec<Step>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    crate::parents::require(&tx, Parent::Campaign(&id)).await?;
    let steps = campaigns::steps(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(steps))
}

#[utoipa::path(post, path = "/teams/{teamId}/campaigns/{campaignId}/steps", tag = "campaigns", request_body = StepInput,
    params(("teamId" = String, Path), ("campaignId" = String, Path)),
    responses((status = 201, description = "The campaign's steps after the insert", body = Vec<Step>),
              (status = 409, description = "The campaign is running or finished"),
              (status = 400, description = "Invalid content, or the change would leave a staged campaign unstageable")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn add_step(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, CampaignId)>,
    JsonBody(body): JsonBody<StepInput>,
) -> Result<(StatusCode, Json<Vec<Step>>), ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_for_edit(&mut conn, &cred, &team, &id).await?;
    if body.opener_category.is_some() && (body.template_id.is_some() || body.body.is_some()) {
        return Err(ApiError::field("openerCategory", "give one of body, templateId or openerCategory"));
    }
    let (channel, subject, text, template_id) = match &body.template_id {
        Some(raw) => {
            let (ch, s, b, t) = template_content(&tx, raw).await?;
            if body.channel.is_some_and(|c| c != ch) {
                return Err(ApiError::field("channel", "differs from the template's channel"));
            }
            (ch, body.subject.clone().or(s), body.body.clone().unwrap_or(b), Some(t))
        }
        None if body.opener_category.is_some() => (body.channel.unwrap_or(Channel::Sms), None, String::new(), None),
        None => {
            let ch = body.channel.ok_or_else(|| ApiError::field("channel", "is required (SMS, EMAIL or VOICE)"))?;
            (ch, body.subject.clone(), body.body.clone().unwrap_or_default(), None)
        }
    };
    let delay = body.delay.unwrap_or(Delay::Minutes(0));
    let (text, opener_category, variants) = match &body.opener_category {
        Some(raw) => {
            if channel != Channel::Sms {
                return Err(ApiError::field("openerCategory", "the opener library is for SMS steps"));
            }
            let (category, variants) = opener_content(&tx, raw).await?;
            (variants[0].body.clone(), Some(category), variants)
        }
        None => (text, None, vec![]),
    };
    let content = validated(
        StepContent { channel, delay, subject, body: text, template_id, opener_category, variants },
        body.position,
    )?;
    campaigns::insert_step(&tx, &team, &id, body.position, &content).await?;
    let steps = campaigns::steps(&tx, &id).await?;
    finish_edit(tx, &app, &access, &team, &id).await?;
    Ok((StatusCode::CREATED, Json(steps)))
}

/// Changes a step; `position` moves it.
#[utoipa::path(patch, path = "/teams/{teamId}/campaigns/{campaignId}/steps/{stepId}", tag = "campaigns", request_body = StepInput,
    params(("teamId" = String, Path), ("campaignId" = String, Path), ("stepId" = String, Path, description = "stp_<ULID>")),
    responses((status = 200, description = "The campaign's steps after the change", body = Vec<Step>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update_step(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id, step_id)): Ids<(TeamId, CampaignId, StepId)>,
    JsonBody(body): JsonBody<StepInput>,
) -> Result<Json<Vec<Step>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_for_edit(&mut conn, &cred, &team, &id).await?;
    let steps = campaigns::steps(&tx, &id).await?;
    let current = steps.iter().find(|s| s.id == step_id).ok_or_else(|| ApiError::NotFound("no such step".into()))?;
    let (mut channel, mut subject, mut text, mut template_id) =
        (current.channel, current.subject.clone(), current.body.clone(), current.template_id.clone());
    if let Some(raw) = &body.template_id {
        let (ch, s, b, t) = template_content(&tx, raw).await?;
        (channel, subject, text, template_id) = (ch, s, b, Some(t));
    }
    if let Some(c) = body.channel {
        if c != channel && body.template_id.is_some() {
            return Err(ApiError::field("channel", "differs from the template's channel"));
        }
        if c != Channel::Email {
            subject = None;
        }
        channel = c;
    }
    if body.subject.is_some() {
        subject = body.subject.clone();
    }
    let (mut opener_category, mut variants) = (current.opener_category.clone(), current.variants.clone());
    if body.template_id.is_some() || body.body.is_some() {
        if body.opener_category.is_some() {
            return Err(ApiError::field("openerCategory", "give one of body, templateId or openerCategory"));
        }
        (opener_category, variants) = (None, vec![]);
    }
    if let Some(b) = &body.body {
        text = b.clone();
    }
    if let Some(raw) = &body.opener_category {
        if channel != Channel::Sms {
            return Err(ApiError::field("openerCategory", "the opener library is for SMS steps"));
        }
        let (category, v) = opener_content(&tx, raw).await?;
        (text, opener_category, variants) = (v[0].body.clone(), Some(category), v);
    }
    if channel != Channel::Sms && !variants.is_empty() {
        return Err(ApiError::field("channel", "a step drawn from the opener library is SMS"));
    }
    let delay = body.delay.unwrap_or(current.delay);
    let content = validated(
        StepContent { channel, delay, subject, body: text, template_id, opener_category, variants },
        body.position,
    )?;
    campaigns::update_step(&tx, &id, &step_id, &content).await?;
    if let Some(pos) = body.position {
        campaigns::move_step(&tx, &id, &step_id, pos).await?;
    }
    let steps = campaigns::steps(&tx, &id).await?;
    finish_edit(tx, &app, &access, &team, &id).await?;
    Ok(Json(steps))
}

#[utoipa::path(delete, path = "/teams/{teamId}/campaigns/{campaignId}/steps/{stepId}", tag = "campaigns",
    params(("teamId" = String, Path), ("campaignId" = String, Path), ("stepId" = String, Path)),
    responses((status = 204, description = "Deleted; later steps move up")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_step(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id, step_id)): Ids<(TeamId, CampaignId, StepId)>,
) -> Result<StatusCode, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_for_edit(&mut conn, &cred, &team, &id).await?;
    if !campaigns::step_exists(&tx, &id, &step_id).await? {
        return Err(ApiError::NotFound("no such step".into()));
    }
    campaigns::delete_step(&tx, &id, &step_id).await?;
    finish_edit(tx, &app, &access, &team, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
