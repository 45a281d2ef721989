//! The team mail log: one mail per key, to the team's owners and admins.

use nextier_domain::ids::TeamId;

use crate::error::Result;
use crate::Tx;

/// Whether a mail with `key` was already sent for the team.
pub async fn already_sent(tx: &Tx<'_>, team: &TeamId, key: &str) -> Result<bool> {
    let rows = tx
        .query_typed(
            "SELECT 1 FROM mail_log WHERE team_id = $1 AND key = $2",
            params![team.as_str() => TEXT, key => TEXT],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// The addresses of the team's approved owners and admins, in order.
pub async fn admin_addresses(tx: &Tx<'_>, team: &TeamId) -> Result<Vec<String>> {
    let rows = tx
        .query_typed(
            "SELECT u.email FROM team_members m JOIN users u ON u.id = m.user_id
              WHERE m.team_id = $1 AND m.status = 'APPROVED' AND m.role IN ('OWNER', 'ADMIN') AND u.email IS NOT NULL
              ORDER BY u.email",
            params![team.as_str() => TEXT],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Records a sent mail under its key (a second record of the same key is ignored).
pub async fn log(tx: &Tx<'_>, team: &TeamId, key: &str, to: &[String], subject: &str, mailer: &str) -> Result<()> {
    tx.query_typed(
        "INSERT INTO mail_log (team_id, key, recipients, subject, mailer) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
        params![team.as_str() => TEXT, key => TEXT, to => TEXT_ARRAY, subject => TEXT, mailer => TEXT],
    )
    .await?;
    Ok(())
}
