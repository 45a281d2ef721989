//! Who is calling. Deployed, API Gateway's JWT authorizer has already verified the token and
//! put its claims in the request context; the local runtime verifies the token itself and
//! puts the claims in the same place (see [`crate::jwt`]). Either way a handler reads them
//! from the context, which no client can write. Machine clients send `X-API-Key` instead.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use lambda_http::request::RequestContext;

use crate::ApiError;

pub const API_KEY_HEADER: &str = "x-api-key";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The identity provider's `email_verified` claim, when the token carries one. Anything
    /// but `true` counts as unverified.
    pub email_verified: Option<bool>,
}

impl Claims {
    /// False only when the token says the email address is not verified.
    pub fn email_trusted(&self) -> bool {
        self.email_verified != Some(false)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A person, verified by the JWT authorizer (or the local runtime).
    User(Claims),
    /// A machine client's raw API key, not yet looked up.
    ApiKey(String),
}

/// The authorizer's claims in the request context, if any.
pub fn context_claims(parts: &Parts) -> Option<&HashMap<String, String>> {
    #[allow(irrefutable_let_patterns)]
    let Some(RequestContext::ApiGatewayV2(ctx)) = parts.extensions.get::<RequestContext>() else {
        return None;
    };
    ctx.authorizer.as_ref()?.jwt.as_ref().map(|j| &j.claims)
}

/// The single value of a header; a header sent twice is ambiguous and refused.
pub fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::BadRequest(format!("header {name} was sent more than once")));
    }
    first.map(|v| v.to_str().map_err(|_| ApiError::BadRequest(format!("header {name} is not valid text")))).transpose()
}

impl<S: Send + Sync> FromRequestParts<S> for Credential {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let api_key = single_header(&parts.headers, API_KEY_HEADER)?;
        let authorization = single_header(&parts.headers, header::AUTHORIZATION.as_str())?;
        if let Some(claims) = context_claims(parts) {
            let subject = claims
                .get("sub")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ApiError::Unauthorized("the token has no subject".into()))?;
            return Ok(Credential::User(Claims {
                subject: subject.clone(),
                email: claims.get("email").cloned(),
                name: claims.get("name").cloned(),
                email_verified: claims.get("email_verified").map(|v| v.trim().eq_ignore_ascii_case("true")),
            }));
        }
        if let Some(key) = api_key {
            return Ok(Credential::ApiKey(key.trim().to_owned()));
        }
        if let Some(key) = authorization.and_then(|a| a.strip_prefix("ApiKey ")) {
            return Ok(Credential::ApiKey(key.trim().to_owned()));
        }
        Err(ApiError::Unauthorized("send a bearer token (Authorization: Bearer …) or an API key (X-API-Key)".into()))
    }
}
