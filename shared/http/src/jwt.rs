//! What API Gateway's JWT authorizer does deployed, done in-process for the local runtime:
//! verify the bearer token (signature, expiry, issuer, audience) and place its claims in the
//! request context where handlers read them. Handlers cannot tell the two apart.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::request::RequestContext;
use serde_json::{json, Value};

use crate::auth::single_header;
use crate::ApiError;

/// The local runtime's token issuer and audience.
pub const LOCAL_ISSUER: &str = "nextier-local";
pub const LOCAL_AUDIENCE: &str = "nextier-api";

/// The verifier a function uses in place of API Gateway's authorizer, only when it runs on
/// the local platform (`PLATFORM=local`: the local runtime, `cargo lambda watch`). Deployed
/// functions never set PLATFORM and trust only the authorizer's context.
pub fn local_verifier_from_env() -> Option<JwtVerifier> {
    if !nextier_runtime::config::is_local() {
        return None;
    }
    match verifier_from_env(&nextier_runtime::config::local_secret()) {
        Ok(v) => Some(v),
        Err(e) => {
            // A configured but unusable JWKS must not silently fall back to the dev secret.
            tracing::error!(error = %e, "LOCAL_JWKS_FILE is set but unusable; every bearer token will be refused");
            Some(JwtVerifier {
                issuer: String::new(),
                audience: String::new(),
                keys: Keys::Jwks(Arc::new(JwkSet { keys: vec![] })),
            })
        }
    }
}

/// The local verifier: an identity provider's JWKS document when `LOCAL_JWKS_FILE` names one
/// (with `LOCAL_JWT_ISSUER` and `LOCAL_JWT_AUDIENCE`), else HS256 with `secret`.
pub fn verifier_from_env(secret: &str) -> anyhow::Result<JwtVerifier> {
    match nextier_runtime::config::get("LOCAL_JWKS_FILE") {
        Some(path) => {
            let doc = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("reading {path}: {e}"))?;
            let issuer = nextier_runtime::config::or("LOCAL_JWT_ISSUER", LOCAL_ISSUER);
            let audience = nextier_runtime::config::or("LOCAL_JWT_AUDIENCE", LOCAL_AUDIENCE);
            JwtVerifier::jwks(&doc, &issuer, &audience)
        }
        None => Ok(JwtVerifier::hs256(secret.as_bytes(), LOCAL_ISSUER, LOCAL_AUDIENCE)),
    }
}

#[derive(Clone)]
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    keys: Keys,
}

#[derive(Clone)]
enum Keys {
    Hs256(Arc<DecodingKey>),
    Jwks(Arc<JwkSet>),
}

impl JwtVerifier {
    /// A shared-secret verifier (the local default).
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            keys: Keys::Hs256(Arc::new(DecodingKey::from_secret(secret))),
        }
    }

    /// A verifier for an identity provider's JWKS document (e.g. Cognito's).
    pub fn jwks(jwks_json: &str, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let set: JwkSet = serde_json::from_str(jwks_json)?;
        Ok(Self { issuer: issuer.into(), audience: audience.into(), keys: Keys::Jwks(Arc::new(set)) })
    }

    /// Verifies a token and returns its claims flattened to strings, as API Gateway does.
    pub fn verify(&self, token: &str) -> Result<HashMap<String, String>, String> {
        let header = decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        let (key, alg) = match &self.keys {
            Keys::Hs256(k) => {
                if header.alg != Algorithm::HS256 {
                    return Err("unexpected signing algorithm".into());
                }
                (k.as_ref().clone(), Algorithm::HS256)
            }
            Keys::Jwks(set) => {
                // Only asymmetric algorithms, and only the one the key declares: the token's
                // header never chooses how it is checked (no "alg": "HS256" with a public key).
                const ASYMMETRIC: [Algorithm; 7] = [
                    Algorithm::RS256,
                    Algorithm::RS384,
                    Algorithm::RS512,
                    Algorithm::ES256,
                    Algorithm::ES384,
                    Algorithm::PS256,
                    Algorithm::EdDSA,
                ];
                if !ASYMMETRIC.contains(&header.alg) {
                    return Err("unexpected signing algorithm".into());
                }
                let kid = header.kid.as_deref().ok_or("token has no kid")?;
                let jwk = set.find(kid).ok_or("unknown signing key")?;
                if let Some(declared) = jwk.common.key_algorithm {
                    if format!("{declared:?}") != format!("{:?}", header.alg) {
                        return Err("the token's algorithm is not its key's".into());
                    }
                }
                let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable signing key: {e}"))?;
                (key, header.alg)
            }
        };
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Not-yet-valid tokens are refused too; the leeway absorbs small clock skew.
        v.validate_nbf = true;
        v.leeway = 5;
        let data = decode::<HashMap<String, Value>>(token, &key, &v).map_err(|e| format!("invalid token: {e}"))?;
        Ok(data
            .claims
            .into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, s)
            })
            .collect())
    }
}

/// Mints an HS256 token, for the local runtime's dev token and for tests.
pub fn mint_hs256(secret: &[u8], issuer: &str, audience: &str, subject: &str, email: &str, ttl_secs: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims =
        json!({"iss": issuer, "aud": audience, "sub": subject, "email": email, "iat": now, "exp": now + ttl_secs});
    mint_hs256_claims(secret, &claims)
}

/// Mints an HS256 token with exactly these claims (tests of `nbf`, `email_verified`, ...).
pub fn mint_hs256_claims(secret: &[u8], claims: &Value) -> String {
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret))
        .expect("HS256 encoding cannot fail")
}

/// A request context like API Gateway's, carrying verified claims.
pub fn request_context(claims: HashMap<String, String>, method: &str, path: &str) -> RequestContext {
    let ctx = json!({
        "routeKey": "$default", "accountId": "local", "stage": "$default",
        "requestId": ulid::Ulid::new().to_string(), "apiId": "local", "domainName": "localhost",
        "domainPrefix": "localhost", "time": chrono::Utc::now().to_rfc2822(), "timeEpoch": chrono::Utc::now().timestamp_millis(),
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "local"},
        "authorizer": {"jwt": {"claims": claims, "scopes": null}}
    });
    RequestContext::ApiGatewayV2(serde_json::from_value(ctx).expect("request context shape"))
}

/// The local stand-in for the JWT authorizer. A bearer token must verify (401 otherwise, as
/// API Gateway answers) and its claims replace whatever context the request had. Without a
/// token the request passes unchanged: over the local runtime's socket no client can attach a
/// context, and an event invoked directly (`cargo lambda invoke --data-file`) keeps the claims
/// it carries, as a directly invoked Lambda would.
pub async fn authorize(State(verifier): State<JwtVerifier>, mut req: Request, next: Next) -> Response {
    let auth = match single_header(req.headers(), header::AUTHORIZATION.as_str()) {
        Ok(a) => a.map(str::to_owned),
        Err(e) => return e.into_response(),
    };
    if let Some(token) = auth.as_deref().and_then(|a| a.strip_prefix("Bearer ")) {
        match verifier.verify(token.trim()) {
            Ok(claims) => {
                let ctx = request_context(claims, req.method().as_str(), req.uri().path());
                req.extensions_mut().insert(ctx);
            }
            Err(reason) => return ApiError::Unauthorized(reason).into_response(),
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"dev-secret-dev-secret-dev-secret";

    #[test]
    fn a_minted_token_verifies_and_yields_string_claims() {
        let v = JwtVerifier::hs256(SECRET, "nextier-local", "nextier-api");
        let t = mint_hs256(SECRET, "nextier-local", "nextier-api", "user-1", "a@example.com", 60);
        let claims = v.verify(&t).unwrap();
        assert_eq!(claims["sub"], "user-1");
        assert_eq!(claims["email"], "a@example.com");
        assert!(claims["exp"].parse::<i64>().is_ok());
    }

    #[test]
    fn expired_wrong_audience_wrong_issuer_and_wrong_key_are_refused() {
        let v = JwtVerifier::hs256(SECRET, "nextier-local", "nextier-api");
        assert!(v.verify(&mint_hs256(SECRET, "nextier-local", "nextier-api", "u", "e@x.io", -120)).is_err());
        assert!(v.verify(&mint_hs256(SECRET, "nextier-local", "other-api", "u", "e@x.io", 60)).is_err());
        assert!(v.verify(&mint_hs256(SECRET, "evil", "nextier-api", "u", "e@x.io", 60)).is_err());
        assert!(v
            .verify(&mint_hs256(b"another-secret-another-secret!!", "nextier-local", "nextier-api", "u", "e@x.io", 60))
            .is_err());
    }

    #[test]
    fn tokens_not_yet_valid_are_refused_beyond_a_small_leeway() {
        let v = JwtVerifier::hs256(SECRET, "nextier-local", "nextier-api");
        let now = chrono::Utc::now().timestamp();
        let at = |nbf: i64| {
            let claims =
                json!({"iss": "nextier-local", "aud": "nextier-api", "sub": "u", "exp": now + 600, "nbf": nbf});
            mint_hs256_claims(SECRET, &claims)
        };
        assert!(v.verify(&at(now + 300)).is_err(), "nbf five minutes ahead");
        assert!(v.verify(&at(now + 2)).is_ok(), "two seconds of clock skew");
        assert!(v.verify(&at(now - 60)).is_ok());
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        let v = JwtVerifier::hs256(SECRET, "nextier-local", "nextier-api");
        // alg "none": header {"alg":"none","typ":"JWT"}, a valid payload, no signature.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = chrono::Utc::now().timestamp();
        let payload = json!({"iss": "nextier-local", "aud": "nextier-api", "sub": "u", "exp": now + 60});
        let token = format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), b64.encode(payload.to_string()));
        assert!(v.verify(&token).is_err());
        assert!(v.verify("garbage").is_err());
    }
}
