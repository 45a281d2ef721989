//! What a campaign email must carry (CAN-SPAM; RFC 8058 one-click): a signed unsubscribe
//! link in `List-Unsubscribe` (with `List-Unsubscribe-Post: List-Unsubscribe=One-Click`) and
//! in the body, and the team's postal address. The gate adds them to every outreach email; a
//! team without a postal address cannot send one (staging refuses the campaign first).

use nextier_domain::ids::{MessageId, TeamId};
use nextier_domain::unsubscribe;
use nextier_store::{settings, Tx};

/// The team setting (scope [`SCOPE`]) holding the postal address printed in every email.
pub const SCOPE: &str = "email";
pub const POSTAL_ADDRESS: &str = "postal_address";

/// The public base URL of the unsubscribe route, e.g. the mail function's URL.
pub const BASE_URL_ENV: &str = "UNSUBSCRIBE_BASE_URL";
/// The secret unsubscribe tokens are signed with (the unsubscribe route checks it).
pub const SECRET_ENV: &str = "UNSUBSCRIBE_SECRET";
/// The local runtime's defaults (its default port).
pub const LOCAL_BASE_URL: &str = "http://127.0.0.1:3000";
pub const LOCAL_SECRET: &str = "local-unsubscribe-secret";
/// An optional mailbox for `List-Unsubscribe: <mailto:…>`.
pub const MAILTO_ENV: &str = "UNSUBSCRIBE_MAILTO";

/// How the gate builds unsubscribe links.
#[derive(Debug, Clone)]
pub struct UnsubscribeLinks {
    pub base_url: String,
    pub secret: Vec<u8>,
    pub mailto: Option<String>,
}

impl UnsubscribeLinks {
    /// [`BASE_URL_ENV`], [`SECRET_ENV`] and [`MAILTO_ENV`]; `None` without a URL or secret.
    pub fn from_env() -> Option<Self> {
        let var = |n: &str| nextier_runtime::config::get(n);
        Some(Self { base_url: var(BASE_URL_ENV)?, secret: var(SECRET_ENV)?.into_bytes(), mailto: var(MAILTO_ENV) })
    }

    /// From the environment, else the local runtime's defaults ([`LOCAL_BASE_URL`] and
    /// [`LOCAL_SECRET`]): for the sandbox gate, never deployed.
    pub fn from_env_or_local() -> Self {
        Self::from_env().unwrap_or_else(|| Self {
            base_url: LOCAL_BASE_URL.into(),
            secret: LOCAL_SECRET.as_bytes().to_vec(),
            mailto: None,
        })
    }

    pub fn link(&self, team: &TeamId, message: &MessageId, address: &str) -> String {
        unsubscribe::url(&self.base_url, &unsubscribe::sign(&self.secret, team, message, address))
    }
}

/// The team's postal address, if it set one.
pub async fn postal_address(tx: &Tx<'_>) -> nextier_store::error::Result<Option<String>> {
    let s = settings::strings_in(tx, SCOPE).await?;
    Ok(s.get(POSTAL_ADDRESS).map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()))
}

/// The body with its footer and the headers of one outreach email.
pub fn compose(
    links: &UnsubscribeLinks,
    team: &TeamId,
    message: &MessageId,
    to: &str,
    body: &str,
    postal: &str,
) -> (String, Vec<(String, String)>) {
    let link = links.link(team, message, to);
    let headers = vec![
        ("List-Unsubscribe".to_owned(), unsubscribe::list_unsubscribe(&link, links.mailto.as_deref())),
        ("List-Unsubscribe-Post".to_owned(), unsubscribe::LIST_UNSUBSCRIBE_POST.to_owned()),
    ];
    (format!("{body}{}", unsubscribe::footer(&link, postal)), headers)
}
