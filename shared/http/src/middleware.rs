use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lambda_http::request::RequestContext;
use nextier_runtime::correlation::{self, CorrelationId};
use nextier_runtime::metrics::{self, Unit};
use tracing::Instrument;

use crate::auth::single_header;

/// Per request: a correlation id (the caller's `X-Correlation-Id` if safe, else API
/// Gateway's request id, else a new one), a span that every log line inherits, one access
/// log line, EMF metrics per route, and the id echoed in the response.
pub async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let supplied = single_header(req.headers(), correlation::HEADER).map(|v| v.map(str::to_owned));
    let cid = match &supplied {
        Ok(Some(v)) => CorrelationId::accept(v),
        _ => None,
    }
    .or_else(|| gateway_request_id(&req).and_then(|id| CorrelationId::accept(&id)))
    .unwrap_or_default();

    let span = tracing::info_span!(
        "request",
        function = nextier_runtime::telemetry::function(),
        correlation_id = %cid,
        team_id = tracing::field::Empty,
        method = %method,
        route = %route,
    );
    let work = async move {
        match supplied {
            Err(problem) => problem.into_response(),
            Ok(_) => next.run(req).await,
        }
    };
    let mut resp = correlation::CURRENT.scope(cid.clone(), work.instrument(span.clone())).await;

    let status = resp.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(status, latency_ms = ms, "request"));
    let route_dim = format!("{method} {route}");
    metrics::emit(
        &[("Function", nextier_runtime::telemetry::function()), ("Route", &route_dim)],
        &[
            ("Requests", 1.0, Unit::Count),
            ("Latency", ms, Unit::Milliseconds),
            ("ClientErrors", f64::from(u8::from((400..500).contains(&status))), Unit::Count),
            ("ServerErrors", f64::from(u8::from(status >= 500)), Unit::Count),
        ],
    );
    if let Ok(v) = HeaderValue::from_str(cid.as_str()) {
        resp.headers_mut().insert(correlation::HEADER, v);
    }
    resp
}

fn gateway_request_id(req: &Request) -> Option<String> {
    #[allow(irrefutable_let_patterns)]
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.extensions().get::<RequestContext>() {
        return ctx.request_id.clone();
    }
    None
}
