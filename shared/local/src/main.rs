//! `cargo run -p nextier-local`: the whole backend on this machine with embedded defaults.

use std::io::Write;

use nextier_local::{start, LocalConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    nextier_runtime::telemetry::init("nextier-local");
    let running = start(LocalConfig::from_env()?).await?;
    let team = &running.demo_team;
    let token_line = match nextier_runtime::config::get("LOCAL_JWKS_FILE") {
        Some(path) => {
            format!("  Bearer tokens are checked against the JWKS in {path}; use your identity provider's.\n")
        }
        None => format!("  Dev token (30 days, user demo@nextier.local):\n  export TOKEN={}\n", running.dev_token),
    };
    let banner = format!(
        "\nNextier local runtime is up.\n\
         \n  API            {api}\n  OpenAPI        {api}/openapi.json\n  Demo team      {team}\n\
         \n{token_line}\
         \n  Try:   curl -s -H \"Authorization: Bearer $TOKEN\" {api}/teams/{team}\n\
         \n  Webhooks       {api}/webhooks/signalhouse (signing secret: {secret})\n                 {api}/webhooks/twilio/voice\n\
         \n  Database (API role, RLS applies):     psql {app}\n  Database (worker role, RLS applies):  psql {worker}\n  Database (admin):                     psql {admin}\n\
         \nCtrl-C stops everything (and the private PostgreSQL cluster).\n",
        api = running.api_url,
        app = running.app_database_url,
        worker = running.worker_database_url,
        admin = running.admin_database_url,
        secret = running.webhook_secret,
    );
    let _ = std::io::stderr().write_all(banner.as_bytes());
    shutdown_signal().await;
    tracing::info!("stopping");
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
