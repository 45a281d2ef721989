//! The mailer port: mail to a team's own people (SendGrid deployed,
//! `nextier_providers::sendgrid`; [`LogMailer`] locally).

use std::sync::Mutex;

use async_trait::async_trait;

#[async_trait]
pub trait Mailer: Send + Sync {
    fn name(&self) -> &'static str;
    async fn send(&self, to: &[String], subject: &str, text: &str, key: &str) -> anyhow::Result<()>;
}

/// The local mailer: logs each mail and keeps it (tests read it back).
#[derive(Default)]
pub struct LogMailer {
    sent: Mutex<Vec<(Vec<String>, String, String)>>,
}

impl LogMailer {
    pub fn sent(&self) -> Vec<(Vec<String>, String, String)> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Mailer for LogMailer {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn send(&self, to: &[String], subject: &str, text: &str, key: &str) -> anyhow::Result<()> {
        tracing::info!(to = ?to, subject, key, "mail (local: logged, not sent)");
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).push((to.to_vec(), subject.to_owned(), text.to_owned()));
        Ok(())
    }
}
