//! `cargo run -p nextier-local`: the whole backend on this machine with embedded defaults.
//!
//! `cargo run -p nextier-local -- openapi [FILE]`: writes the API's OpenAPI document (the one
//! served at `/openapi.json`) to FILE, or to standard output, and exits; no database, no server.

use std::io::Write;

use nextier_local::{start, LocalConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => {}
        ["openapi"] => return write_openapi(None),
        ["openapi", file] => return write_openapi(Some(file)),
        _ => {
            eprintln!("usage: nextier-local                 the whole backend on this machine");
            eprintln!("       nextier-local openapi [FILE]  the OpenAPI document, to FILE or standard output");
            std::process::exit(2);
        }
    }
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

/// The document as `/openapi.json` serves it, pretty-printed.
fn write_openapi(file: Option<&str>) -> anyhow::Result<()> {
    let mut json = nextier_api::openapi_document().to_pretty_json()?;
    json.push('\n');
    match file {
        Some(path) => std::fs::write(path, json).map_err(|e| anyhow::anyhow!("writing {path}: {e}")),
        None => match std::io::stdout().write_all(json.as_bytes()) {
            // `| head` closing the pipe early is not an error.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(()),
        },
    }
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
