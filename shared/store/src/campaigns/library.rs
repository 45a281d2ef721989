//! The team's library: message templates and saved audiences (filters).

use super::*;

/// Deletes one row of the team's `table` by id; NotFound when there is none.
async fn delete_one(tx: &Tx<'_>, table: &'static str, id: &str) -> Result<()> {
    let rows = tx.query_typed(&format!("DELETE FROM {table} WHERE id = $1 RETURNING 1"), params![id => TEXT]).await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageTemplate {
    pub id: TemplateId,
    pub name: String,
    pub channel: Channel,
    pub subject: Option<String>,
    pub body: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn template(r: &Row) -> MessageTemplate {
    MessageTemplate {
        id: TemplateId::from_trusted(r.get("id")),
        name: r.get("name"),
        channel: Channel::parse(r.get("channel")).unwrap_or(Channel::Sms),
        subject: r.get("subject"),
        body: r.get("body"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

const TEMPLATE_COLS: &str = "id, name, channel, subject, body, created_by, created_at, updated_at";

pub async fn create_template(
    tx: &Tx<'_>,
    team: &TeamId,
    name: &str,
    channel: Channel,
    subject: Option<&str>,
    body: &str,
    actor: &str,
) -> Result<MessageTemplate> {
    let id = TemplateId::new();
    let rows = tx
        .query_typed(
            &format!(
                "INSERT INTO message_templates (id, team_id, name, channel, subject, body, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {TEMPLATE_COLS}"
            ),
            params![id.as_str() => TEXT, team.as_str() => TEXT, name => TEXT, channel.as_str() => TEXT,
                    subject => TEXT, body => TEXT, actor => TEXT],
        )
        .await
        .map_err(|e| StoreError::unique(e, "message_templates_team_id_name_key", "a template with this name exists"))?;
    rows.first().map(template).ok_or(StoreError::NotFound)
}

pub async fn update_template(
    tx: &Tx<'_>,
    id: &TemplateId,
    name: &str,
    subject: Option<&str>,
    body: &str,
) -> Result<MessageTemplate> {
    let rows = tx
        .query_typed(
            &format!(
                "UPDATE message_templates SET name = $2, subject = $3, body = $4, updated_at = now()
                  WHERE id = $1 RETURNING {TEMPLATE_COLS}"
            ),
            params![id.as_str() => TEXT, name => TEXT, subject => TEXT, body => TEXT],
        )
        .await
        .map_err(|e| StoreError::unique(e, "message_templates_team_id_name_key", "a template with this name exists"))?;
    rows.first().map(template).ok_or(StoreError::NotFound)
}

pub async fn get_template(tx: &Tx<'_>, id: &TemplateId) -> Result<MessageTemplate> {
    let rows = tx
        .query_typed(
            &format!("SELECT {TEMPLATE_COLS} FROM message_templates WHERE id = $1"),
            params![id.as_str() => TEXT],
        )
        .await?;
    rows.first().map(template).ok_or(StoreError::NotFound)
}

pub async fn list_templates(tx: &Tx<'_>, page: &PageRequest) -> Result<Vec<MessageTemplate>> {
    let rows = tx
        .query_typed(
            &format!("SELECT {TEMPLATE_COLS} FROM message_templates WHERE id > $1 ORDER BY id LIMIT $2"),
            params![page.after.clone().unwrap_or_default() => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(template).collect())
}

pub async fn delete_template(tx: &Tx<'_>, id: &TemplateId) -> Result<()> {
    delete_one(tx, "message_templates", id.as_str()).await
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavedFilter {
    pub id: FilterId,
    pub name: String,
    #[schema(value_type = Object)]
    pub filter: serde_json::Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

fn saved_filter(r: &Row) -> SavedFilter {
    SavedFilter {
        id: FilterId::from_trusted(r.get("id")),
        name: r.get("name"),
        filter: r.get("filter"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
    }
}

pub async fn create_filter(
    tx: &Tx<'_>,
    team: &TeamId,
    name: &str,
    filter: &serde_json::Value,
    actor: &str,
) -> Result<SavedFilter> {
    let id = FilterId::new();
    let rows = tx
        .query_typed(
            "INSERT INTO saved_filters (id, team_id, name, filter, created_by) VALUES ($1, $2, $3, $4, $5)
             RETURNING id, name, filter, created_by, created_at",
            params![id.as_str() => TEXT, team.as_str() => TEXT, name => TEXT, filter => JSONB, actor => TEXT],
        )
        .await
        .map_err(|e| StoreError::unique(e, "saved_filters_team_id_name_key", "a saved filter with this name exists"))?;
    rows.first().map(saved_filter).ok_or(StoreError::NotFound)
}

pub async fn get_filter(tx: &Tx<'_>, id: &FilterId) -> Result<SavedFilter> {
    let rows = tx
        .query_typed(
            "SELECT id, name, filter, created_by, created_at FROM saved_filters WHERE id = $1",
            params![id.as_str() => TEXT],
        )
        .await?;
    rows.first().map(saved_filter).ok_or(StoreError::NotFound)
}

pub async fn list_filters(tx: &Tx<'_>, page: &PageRequest) -> Result<Vec<SavedFilter>> {
    let rows = tx
        .query_typed(
            "SELECT id, name, filter, created_by, created_at FROM saved_filters WHERE id > $1 ORDER BY id LIMIT $2",
            params![page.after.clone().unwrap_or_default() => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(saved_filter).collect())
}

pub async fn delete_filter(tx: &Tx<'_>, id: &FilterId) -> Result<()> {
    delete_one(tx, "saved_filters", id.as_str()).await
}
