//! The local JWKS mode, with a real ES256 key (tests/fixtures: a P-256 key made for these
//! tests and its JWKS document).

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use nextier_http::jwt::{mint_hs256, JwtVerifier};
use serde_json::json;

const JWKS: &str = include_str!("fixtures/jwks.json");
const KEY: &[u8] = include_bytes!("fixtures/es256.pem");
const ISSUER: &str = "https://idp.example.com/pool";
const AUDIENCE: &str = "nextier-web";

fn token(kid: Option<&str>, aud: &str, exp_in: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    let claims =
        json!({"iss": ISSUER, "aud": aud, "sub": "idp-user-7", "email": "ana@example.com", "exp": now + exp_in});
    encode(&header, &claims, &EncodingKey::from_ec_pem(KEY).unwrap()).unwrap()
}

fn verifier() -> JwtVerifier {
    JwtVerifier::jwks(JWKS, ISSUER, AUDIENCE).unwrap()
}

#[test]
fn a_token_signed_by_a_key_in_the_jwks_verifies() {
    let claims = verifier().verify(&token(Some("test-key-1"), AUDIENCE, 300)).unwrap();
    assert_eq!((claims["sub"].as_str(), claims["email"].as_str()), ("idp-user-7", "ana@example.com"));
}

#[test]
fn unknown_keys_missing_kids_wrong_audiences_and_expired_tokens_are_refused() {
    let v = verifier();
    assert!(v.verify(&token(Some("other-key"), AUDIENCE, 300)).unwrap_err().contains("unknown signing key"));
    assert!(v.verify(&token(None, AUDIENCE, 300)).unwrap_err().contains("no kid"));
    assert!(v.verify(&token(Some("test-key-1"), "someone-else", 300)).is_err());
    assert!(v.verify(&token(Some("test-key-1"), AUDIENCE, -600)).is_err());
}

#[test]
fn a_symmetric_token_cannot_pose_as_the_key_holder() {
    // The classic confusion: alg HS256, "signed" with something public.
    let forged = mint_hs256(JWKS.as_bytes(), ISSUER, AUDIENCE, "attacker", "x@example.com", 300);
    let err = verifier().verify(&forged).unwrap_err();
    assert!(err.contains("algorithm"), "{err}");
}
