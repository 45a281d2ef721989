use nextier_domain::ids::{TeamId, UserId};

use crate::error::Result;

/// Whose rows a transaction may touch. Row-level security reads these settings; with
/// neither set, no tenant row is visible.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub team: Option<TeamId>,
    pub user: Option<UserId>,
}

impl Scope {
    pub fn team(team: TeamId) -> Self {
        Self { team: Some(team), user: None }
    }

    pub fn user(user: UserId) -> Self {
        Self { team: None, user: Some(user) }
    }

    pub fn with_user(mut self, user: Option<UserId>) -> Self {
        self.user = user;
        self
    }
}

/// Opens a transaction and scopes it. `set_config(..., true)` is transaction-local, so the
/// setting cannot leak to the next borrower of the connection, and (unlike a session `SET`)
/// it does not pin the connection behind RDS Proxy.
pub async fn begin<'c>(
    conn: &'c mut deadpool_postgres::Object,
    scope: &Scope,
) -> Result<deadpool_postgres::Transaction<'c>> {
    let tx = conn.transaction().await?;
    apply(&tx, scope).await?;
    Ok(tx)
}

/// Re-scopes an open transaction, e.g. after creating a team to enter it.
pub async fn apply(tx: &tokio_postgres::Transaction<'_>, scope: &Scope) -> Result<()> {
    let team = scope.team.as_ref().map(|t| t.as_str()).unwrap_or("");
    let user = scope.user.as_ref().map(|u| u.as_str()).unwrap_or("");
    tx.query_typed(
        "SELECT set_config('app.team_id', $1, true), set_config('app.user_id', $2, true)",
        params![team => TEXT, user => TEXT],
    )
    .await?;
    Ok(())
}
