//! Finding contacts: list filters, selections and bulk actions over them.

use super::*;

/// List filters; every one is optional and they combine with AND. Kept as JSON on a job
/// that runs later (an export).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Filter {
    pub status: Option<String>,
    pub lead_state: Option<LeadState>,
    pub tag: Option<String>,
    pub min_score: Option<i32>,
    pub max_score: Option<i32>,
    pub has_mobile: Option<bool>,
    pub state: Option<String>,
    pub zip: Option<String>,
    /// Free text: name, company, email, or (4+ digits) phone.
    pub q: Option<String>,
    /// A role in this business.
    pub business_id: Option<String>,
    /// A role in a business of this sector (case-insensitive).
    pub sector: Option<String>,
    /// This role in some business (owner, ceo, ...).
    pub role: Option<String>,
    /// raw, traced, graded, ready or rejected.
    pub enrichment_status: Option<String>,
    /// Owns a property scoring at least this for distress.
    pub min_distress: Option<i32>,
    /// Owns a property showing this distress signal (`pre_foreclosure`, `vacant`...).
    pub distress_signal: Option<String>,
    /// Owns a property with at least this equity (percent).
    pub min_equity: Option<f64>,
    /// Owns a property valued within these bounds.
    pub min_value: Option<i64>,
    pub max_value: Option<i64>,
    /// Owns a property in this state, city (case-insensitive) or zip.
    pub property_state: Option<String>,
    pub property_city: Option<String>,
    pub property_zip: Option<String>,
}

/// A WHERE clause and its typed parameters, built from a filter.
pub(crate) struct Where {
    pub(crate) clauses: Vec<String>,
    values: Vec<Box<dyn ToSql + Sync + Send>>,
    types: Vec<Type>,
}

impl Where {
    pub(crate) fn new() -> Self {
        Self { clauses: vec!["c.deleted_at IS NULL".into()], values: vec![], types: vec![] }
    }

    /// Adds a parameter and returns its placeholder.
    pub(crate) fn bind<T: ToSql + Sync + Send + 'static>(&mut self, v: T, t: Type) -> String {
        self.values.push(Box::new(v));
        self.types.push(t);
        format!("${}", self.values.len())
    }

    pub(crate) fn from_filter(f: &Filter) -> Self {
        let mut w = Where::new();
        if let Some(v) = &f.status {
            let p = w.bind(v.clone(), Type::TEXT);
            w.clauses.push(format!("c.status = {p}"));
        }
        if let Some(v) = f.lead_state {
            let p = w.bind(v.as_str().to_owned(), Type::TEXT);
            w.clauses.push(format!("c.lead_state = {p}::lead_state"));
        }
        if let Some(v) = &f.tag {
            let p = w.bind(v.clone(), Type::TEXT);
            w.clauses.push(format!("{p} = ANY(c.tags)"));
        }
        if let Some(v) = f.min_score {
            let p = w.bind(v, Type::INT4);
            w.clauses.push(format!("c.score >= {p}"));
        }
        if let Some(v) = f.max_score {
            let p = w.bind(v, Type::INT4);
            w.clauses.push(format!("c.score <= {p}"));
        }
        if let Some(v) = &f.business_id {
            let p = w.bind(v.clone(), Type::TEXT);
            w.clauses.push(format!(
                "EXISTS (SELECT 1 FROM business_owners o WHERE o.contact_id = c.id AND o.business_id = {p})"
            ));
        }
        if let Some(v) = &f.sector {
            let p = w.bind(v.to_lowercase(), Type::TEXT);
            w.clauses.push(format!(
                "EXISTS (SELECT 1 FROM business_owners o JOIN businesses b ON b.id = o.business_id
                          WHERE o.contact_id = c.id AND lower(b.sector) = {p})"
            ));
        }
        if let Some(v) = &f.role {
            let p = w.bind(v.clone(), Type::TEXT);
            w.clauses
                .push(format!("EXISTS (SELECT 1 FROM business_owners o WHERE o.contact_id = c.id AND o.role = {p})"));
        }
        if let Some(v) = &f.enrichment_status {
            let p = w.bind(v.clone(), Type::TEXT);
            w.clauses.push(format!("c.enrichment_status = {p}"));
        }
        // Property fields: the contact owns a property that matches them all.
        let mut prop = Vec::new();
        if let Some(v) = f.min_distress {
            let p = w.bind(v, Type::INT4);
            prop.push(format!("d.score >= {p}"));
        }
        if let Some(v) = &f.distress_signal {
            let p = w.bind(serde_json::json!([{"signal": v, "present": true}]), Type::JSONB);
            prop.push(format!("d.signals @> {p}"));
        }
        if let Some(v) = f.min_equity {
            let p = w.bind(v, Type::FLOAT8);
            prop.push(format!("pr.equity_percent::float8 >= {p}"));
        }
        if let Some(v) = f.min_value {
            let p = w.bind(v, Type::INT8);
            prop.push(format!("pr.estimated_value >= {p}"));
        }
        if let Some(v) = f.max_value {
            let p = w.bind(v, Type::INT8);
            prop.push(format!("pr.estimated_value <= {p}"));
        }
        if let Some(v) = &f.property_state {
            let p = w.bind(v.clone(), Type::TEXT);
            prop.push(format!("pr.state = {p}"));
        }
        if let Some(v) = &f.property_city {
            let p = w.bind(v.to_lowercase(), Type::TEXT);
            prop.push(format!("lower(pr.city) = {p}"));
        }
        if let Some(v) = &f.property_zip {
            let p = w.bind(v.clone(), Type::TEXT);
            prop.push(format!("pr.zip = {p}"));
        }
        if !prop.is_empty() {
            w.clauses.push(format!(
                "EXISTS (SELECT 1 FROM property_owners o JOIN properties pr ON pr.id = o.property_id
                          LEFT JOIN property_distress_scores d ON d.property_id = pr.id
                          WHERE o.contact_id = c.id AND {})",
                prop.join(" AND ")
            ));
        }
        if let Some(has) = f.has_mobile {
            let not = if has { "" } else { "NOT " };
            w.clauses.push(format!(
                "{not}EXISTS (SELECT 1 FROM contact_phones p WHERE p.contact_id = c.id AND p.type = 'mobile' AND NOT p.do_not_call)"
            ));
        }
        if let Some(v) = &f.state {
            let p = w.bind(v.clone(), Type::TEXT);
            w.clauses.push(format!(
                "EXISTS (SELECT 1 FROM contact_addresses a WHERE a.contact_id = c.id AND a.state = {p})"
            ));
        }
        if let Some(v) = &f.zip {
            let p = w.bind(v.clone(), Type::TEXT);
            w.clauses
                .push(format!("EXISTS (SELECT 1 FROM contact_addresses a WHERE a.contact_id = c.id AND a.zip = {p})"));
        }
        if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let digits: String = q.chars().filter(char::is_ascii_digit).collect();
            let like = format!("%{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_").to_lowercase());
            let p = w.bind(like, Type::TEXT);
            let mut any = vec![
                format!("lower(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')) LIKE {p}"),
                format!("lower(coalesce(c.company, '')) LIKE {p}"),
                format!("EXISTS (SELECT 1 FROM contact_emails e WHERE e.contact_id = c.id AND e.email LIKE {p})"),
            ];
            if digits.len() >= 4 {
                let d = w.bind(format!("%{digits}%"), Type::TEXT);
                any.push(format!(
                    "EXISTS (SELECT 1 FROM contact_phones p WHERE p.contact_id = c.id AND p.e164 LIKE {d})"
                ));
            }
            w.clauses.push(format!("({})", any.join(" OR ")));
        }
        w
    }

    pub(crate) fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }

    pub(crate) fn params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.values.iter().zip(&self.types).map(|(v, t)| (v.as_ref() as &(dyn ToSql + Sync), t.clone())).collect()
    }
}

pub async fn list(tx: &Tx<'_>, filter: &Filter, page: &PageRequest) -> Result<Vec<Contact>> {
    let mut w = Where::from_filter(filter);
    let after = w.bind(page.after.clone().unwrap_or_default(), Type::TEXT);
    let limit = w.bind(page.fetch_limit(), Type::INT8);
    let sql = format!("{SELECT} WHERE {} AND c.id > {after} ORDER BY c.id LIMIT {limit}", w.sql());
    let rows = tx.query_typed(&sql, &w.params()).await?;
    Ok(rows.iter().map(contact).collect())
}

/// The ids of what the selection covers (live contacts of the team), at most `limit`, in id
/// order; ids are checked to exist.
pub async fn ids_of(tx: &Tx<'_>, selection: Selection<'_>, limit: i64) -> Result<Vec<ContactId>> {
    let mut w = match selection {
        Selection::Filter(f) => Where::from_filter(f),
        Selection::Ids(ids) => {
            let mut w = Where::new();
            let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            let p = w.bind(list, Type::TEXT_ARRAY);
            w.clauses.push(format!("c.id = ANY({p})"));
            w
        }
    };
    let limit = w.bind(limit, Type::INT8);
    let sql = format!("SELECT c.id FROM contacts c WHERE {} ORDER BY c.id LIMIT {limit}", w.sql());
    let rows = tx.query_typed(&sql, &w.params()).await?;
    Ok(rows.iter().map(|r| ContactId::from_trusted(r.get(0))).collect())
}

/// What a bulk action applies to: explicit ids, or everything a filter matches.
pub enum Selection<'a> {
    Ids(&'a [ContactId]),
    Filter(&'a Filter),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Tag,
    Untag,
    Delete,
}

/// Applies a bulk action in one statement; returns how many contacts changed.
pub async fn bulk(tx: &Tx<'_>, selection: Selection<'_>, action: BulkAction, tags: &[String]) -> Result<u64> {
    let mut w = match selection {
        Selection::Filter(f) => Where::from_filter(f),
        Selection::Ids(ids) => {
            let mut w = Where::new();
            let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            let p = w.bind(ids, Type::TEXT_ARRAY);
            w.clauses.push(format!("c.id = ANY({p})"));
            w
        }
    };
    let set = match action {
        BulkAction::Tag => {
            let p = w.bind(tags.to_vec(), Type::TEXT_ARRAY);
            w.clauses.push(format!("NOT (c.tags @> {p})"));
            format!("tags = ARRAY(SELECT DISTINCT t FROM unnest(c.tags || {p}) t ORDER BY t)")
        }
        BulkAction::Untag => {
            let p = w.bind(tags.to_vec(), Type::TEXT_ARRAY);
            w.clauses.push(format!("c.tags && {p}"));
            format!("tags = ARRAY(SELECT t FROM unnest(c.tags) t WHERE NOT t = ANY({p}) ORDER BY t)")
        }
        BulkAction::Delete => "deleted_at = now()".to_owned(),
    };
    let sql = format!("UPDATE contacts c SET {set}, updated_at = now() WHERE {} RETURNING 1", w.sql());
    let rows = tx.query_typed(&sql, &w.params()).await?;
    Ok(rows.len() as u64)
}
