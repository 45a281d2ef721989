//! The Zoho CRM client against the local fake speaking Zoho's contract
//! (`nextier_testkit::fake_zoho`): the authorization-code flow and refresh, their refusals, the
//! v3 upsert with its duplicate check and per-record outcomes, record lists paged and filtered by
//! `If-Modified-Since`, deleted records; and the failures: an expired access token, 429 with and
//! without `Retry-After`, 5xx retried, a slow provider.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nextier_platform::ports::crm::{Crm, CrmError, ProviderError, TokenError, UpsertOutcome};
use nextier_providers::retry::Retry;
use nextier_providers::zoho::{Config, Zoho, DEFAULT_SCOPES};
use nextier_testkit::fake_zoho::{FakeZoho, CLIENT_ID, CLIENT_SECRET};
use serde_json::{json, Value};

const REDIRECT: &str = "https://app.nextier.test/integrations/zoho/callback";

fn config(secret: &str) -> Config {
    Config {
        client_id: CLIENT_ID.into(),
        client_secret: secret.into(),
        scopes: DEFAULT_SCOPES.into(),
        timeout: Duration::from_secs(5),
        retry: Retry { attempts: 3, backoff: Duration::from_millis(5), max_backoff: Duration::from_millis(20) },
    }
}

fn zoho() -> Zoho {
    Zoho::new(config(CLIENT_SECRET))
}

fn dup(field: &str) -> Vec<String> {
    vec![field.to_owned()]
}

fn fields(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn a_code_is_exchanged_for_tokens_naming_the_api_domain_once() {
    let f = FakeZoho::start().await;
    let z = zoho();
    let url = z.authorize_url(&f.accounts(), "st-123", REDIRECT);
    let u = reqwest::Url::parse(&url).unwrap();
    assert_eq!(u.as_str().split('?').next(), Some(format!("{}/oauth/v2/auth", f.accounts()).as_str()));
    let q: std::collections::HashMap<String, String> = u.query_pairs().into_owned().collect();
    for (k, v) in [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("scope", DEFAULT_SCOPES),
        ("access_type", "offline"),
        ("prompt", "consent"),
        ("redirect_uri", REDIRECT),
        ("state", "st-123"),
    ] {
        assert_eq!(q.get(k).map(String::as_str), Some(v), "{k}");
    }

    f.state.issue_code("1000.code-a");
    let t = z.exchange_code(&f.accounts(), "1000.code-a", REDIRECT).await.unwrap();
    assert!(t.access_token.starts_with("1000."), "{t:?}");
    assert!(t.refresh_token.is_some());
    assert_eq!(t.api_domain.as_deref(), Some(f.api().as_str()));
    assert_eq!(t.expires_in_secs, 3600);
    let sent = f.state.last_token_request().unwrap();
    assert_eq!(sent["grant_type"], "authorization_code");
    assert_eq!(sent["redirect_uri"], REDIRECT);
    assert_eq!(sent["client_secret"], "<redacted>", "the right secret was sent");

    // The access token works; the code is good only once.
    let api = t.api_domain.unwrap();
    assert!(z
        .changed(&api, &t.access_token, "Leads", &fields(&["Last_Name"]), None, 1)
        .await
        .unwrap()
        .records
        .is_empty());
    assert_eq!(f.state.last_authorization(), Some(format!("Zoho-oauthtoken {}", t.access_token)));
    assert_eq!(
        z.exchange_code(&f.accounts(), "1000.code-a", REDIRECT).await,
        Err(TokenError::Revoked("invalid_code".into()))
    );
    assert_eq!(
        z.exchange_code(&f.accounts(), "never-issued", REDIRECT).await,
        Err(TokenError::Revoked("invalid_code".into()))
    );
    assert_eq!(f.state.count("token"), 3, "a code exchange is never retried");
}

#[tokio::test]
async fn the_fakes_consent_redirects_with_a_code_the_client_can_exchange() {
    let f = FakeZoho::start().await;
    let z = zoho();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http.get(z.authorize_url(&f.accounts(), "s t", REDIRECT)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let to = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    let q: std::collections::HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "s t");
    assert_eq!(q["accounts-server"], f.accounts());
    let t = z.exchange_code(&q["accounts-server"], &q["code"], REDIRECT).await.unwrap();
    assert_eq!(t.api_domain, Some(f.api()));
}

#[tokio::test]
async fn a_refresh_gives_a_new_access_token_until_the_grant_is_revoked() {
    let f = FakeZoho::start().await;
    let z = zoho();
    f.state.issue_code("c1");
    f.state.set_expires_in(1800);
    let first = z.exchange_code(&f.accounts(), "c1", REDIRECT).await.unwrap();
    let refresh_token = first.refresh_token.clone().unwrap();
    let again = z.refresh(&f.accounts(), &refresh_token).await.unwrap();
    assert_ne!(again.access_token, first.access_token);
    assert_eq!((again.refresh_token.as_deref(), again.expires_in_secs), (None, 1800));
    assert_eq!(again.api_domain, Some(f.api()));
    assert_eq!(f.state.last_token_request().unwrap()["grant_type"], "refresh_token");
    z.changed(&f.api(), &again.access_token, "Leads", &[], None, 1).await.unwrap();

    f.state.revoke(&refresh_token);
    assert_eq!(z.refresh(&f.accounts(), &refresh_token).await, Err(TokenError::Revoked("invalid_code".into())));
    assert!(matches!(
        z.changed(&f.api(), &again.access_token, "Leads", &[], None, 1).await,
        Err(CrmError::TokenExpired(_))
    ));
}

#[tokio::test]
async fn a_wrong_client_secret_is_our_configuration_not_a_dead_grant() {
    let f = FakeZoho::start().await;
    f.state.issue_code("c1");
    let z = Zoho::new(config("not-the-secret"));
    let e = z.exchange_code(&f.accounts(), "c1", REDIRECT).await.unwrap_err();
    assert!(matches!(e, TokenError::Provider(ProviderError::Unauthorized(_))), "{e:?}");
    assert!(!format!("{e:?}").contains("not-the-secret"));
    assert_eq!(f.state.last_token_request().unwrap()["client_secret"], "<wrong>");
    let (_, refresh) = f.state.grant();
    assert!(matches!(
        z.refresh(&f.accounts(), &refresh).await,
        Err(TokenError::Provider(ProviderError::Unauthorized(_)))
    ));
}

#[tokio::test]
async fn a_refresh_is_retried_through_a_5xx_of_the_accounts_server() {
    let f = FakeZoho::start().await;
    let (_, refresh) = f.state.grant();
    f.state.fail_token_next(2, 502, None);
    assert!(zoho().refresh(&f.accounts(), &refresh).await.is_ok());
    assert_eq!(f.state.count("token"), 3);
    f.state.fail_token_next(1, 429, Some(9));
    assert_eq!(
        zoho().refresh(&f.accounts(), &refresh).await,
        Err(TokenError::Provider(ProviderError::RateLimited(Duration::from_secs(9))))
    );
}

#[tokio::test]
async fn an_upsert_inserts_then_updates_the_record_its_duplicate_check_field_finds() {
    let f = FakeZoho::start().await;
    let (token, _) = f.state.grant();
    let z = zoho();
    let first = z
        .upsert(
            &f.api(),
            &token,
            "Leads",
            &[json!({"Nextier_Id": "c1", "Last_Name": "Ruiz", "Email": "ana@example.com"})],
            &dup("Nextier_Id"),
        )
        .await
        .unwrap();
    let [UpsertOutcome::Saved { id, created: true }] = first.as_slice() else { panic!("{first:?}") };
    let again = z
        .upsert(
            &f.api(),
            &token,
            "Leads",
            &[json!({"Nextier_Id": "c1", "Last_Name": "Ruiz-Soto", "Phone": "+18135552301"})],
            &dup("Nextier_Id"),
        )
        .await
        .unwrap();
    assert_eq!(again, vec![UpsertOutcome::Saved { id: id.clone(), created: false }]);
    let records = f.state.records("Leads");
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0]["Last_Name"].as_str(), records[0]["Email"].as_str(), records[0]["Phone"].as_str()),
        (Some("Ruiz-Soto"), Some("ana@example.com"), Some("+18135552301"))
    );
    assert_eq!(f.state.last_authorization(), Some(format!("Zoho-oauthtoken {token}")));
    assert_eq!(f.state.count("upsert"), 2);
}

#[tokio::test]
async fn a_refused_record_in_a_mixed_batch_is_reported_in_its_place() {
    let f = FakeZoho::start().await;
    let (token, _) = f.state.grant();
    let z = zoho();
    let batch = [
        json!({"Nextier_Id": "a", "Last_Name": "Ruiz"}),
        json!({"Nextier_Id": "b", "First_Name": "No Last Name"}),
        json!({"Nextier_Id": "c", "Last_Name": "Moss", "Email": "not an email"}),
        json!({"Nextier_Id": "d", "Last_Name": "Patel"}),
    ];
    let out = z.upsert(&f.api(), &token, "Contacts", &batch, &dup("Nextier_Id")).await.unwrap();
    assert_eq!(out.len(), 4);
    assert!(matches!(&out[0], UpsertOutcome::Saved { created: true, .. }), "{out:?}");
    assert_eq!(
        out[1],
        UpsertOutcome::Refused {
            code: "MANDATORY_NOT_FOUND".into(),
            message: "required field not found: Last_Name".into()
        }
    );
    assert!(matches!(&out[2], UpsertOutcome::Refused { code, .. } if code == "INVALID_DATA"), "{out:?}");
    assert!(matches!(&out[3], UpsertOutcome::Saved { created: true, .. }), "{out:?}");
    assert_eq!(f.state.records("Contacts").len(), 2);

    // Every record refused: Zoho answers 400 with the same list; still one outcome each.
    let out = z.upsert(&f.api(), &token, "Leads", &[json!({"First_Name": "X"})], &dup("Nextier_Id")).await.unwrap();
    assert!(matches!(&out[..], [UpsertOutcome::Refused { code, .. }] if code == "MANDATORY_NOT_FOUND"), "{out:?}");
}

#[tokio::test]
async fn more_than_a_hundred_records_go_in_batches_in_order() {
    let f = FakeZoho::start().await;
    let (token, _) = f.state.grant();
    let records: Vec<Value> =
        (0..230).map(|i| json!({"Nextier_Id": format!("c{i}"), "Last_Name": format!("L{i}")})).collect();
    let out = zoho().upsert(&f.api(), &token, "Leads", &records, &dup("Nextier_Id")).await.unwrap();
    assert_eq!(out.len(), 230);
    assert_eq!(f.state.count("upsert"), 3);
    let UpsertOutcome::Saved { id, .. } = &out[150] else { panic!() };
    assert_eq!(f.state.record("Leads", id).unwrap()["Nextier_Id"], "c150");
    assert!(zoho().upsert(&f.api(), &token, "Leads", &[], &dup("Nextier_Id")).await.unwrap().is_empty());
    assert_eq!(f.state.count("upsert"), 3, "nothing to send, no call");
}

#[tokio::test]
async fn an_expired_access_token_is_told_apart_so_the_caller_refreshes() {
    let f = FakeZoho::start().await;
    let (token, refresh) = f.state.grant();
    let z = zoho();
    f.state.expire_access_tokens();
    let rec = [json!({"Nextier_Id": "a", "Last_Name": "Ruiz"})];
    assert_eq!(
        z.upsert(&f.api(), &token, "Leads", &rec, &dup("Nextier_Id")).await,
        Err(CrmError::TokenExpired("INVALID_TOKEN".into()))
    );
    assert!(matches!(z.changed(&f.api(), &token, "Leads", &[], None, 1).await, Err(CrmError::TokenExpired(_))));
    assert!(matches!(z.deleted(&f.api(), &token, "Leads", None, 1).await, Err(CrmError::TokenExpired(_))));
    assert_eq!(f.state.count("api"), 3, "a 401 is not retried");
    assert!(matches!(z.changed(&f.api(), "not-a-token", "Leads", &[], None, 1).await, Err(CrmError::TokenExpired(_))));
    let fresh = z.refresh(&f.accounts(), &refresh).await.unwrap();
    assert!(z.upsert(&f.api(), &fresh.access_token, "Leads", &rec, &dup("Nextier_Id")).await.is_ok());
}

#[tokio::test]
async fn a_rate_limit_is_returned_with_zohos_wait_and_not_retried_in_place() {
    let f = FakeZoho::start().await;
    let (token, _) = f.state.grant();
    let z = zoho();
    f.state.fail_next(1, 429, Some(7));
    assert_eq!(
        z.changed(&f.api(), &token, "Leads", &[], None, 1).await,
        Err(CrmError::Provider(ProviderError::RateLimited(Duration::from_secs(7))))
    );
    assert_eq!(f.state.count("list"), 1);

    // API credits for the minute: no Retry-After, the default wait.
    f.state.limit_per_minute(2);
    z.changed(&f.api(), &token, "Leads", &[], None, 1).await.unwrap();
    z.deleted(&f.api(), &token, "Leads", None, 1).await.unwrap();
    assert_eq!(
        z.upsert(&f.api(), &token, "Leads", &[json!({"Last_Name": "X"})], &dup("Nextier_Id")).await,
        Err(CrmError::Provider(ProviderError::RateLimited(Duration::from_secs(60))))
    );
    f.state.advance(61);
    assert!(z.changed(&f.api(), &token, "Leads", &[], None, 1).await.is_ok(), "a minute later");
}

#[tokio::test]
async fn a_5xx_is_retried_and_an_outage_is_unavailable() {
    let f = FakeZoho::start().await;
    let (token, _) = f.state.grant();
    let z = zoho();
    f.state.fail_next(2, 500, None);
    let out = z
        .upsert(&f.api(), &token, "Leads", &[json!({"Nextier_Id": "a", "Last_Name": "Ruiz"})], &dup("Nextier_Id"))
        .await
        .unwrap();
    assert!(matches!(&out[..], [UpsertOutcome::Saved { created: true, .. }]));
    assert_eq!(f.state.count("upsert"), 3);

    f.state.fail_next(3, 503, Some(0));
    assert!(matches!(
        z.changed(&f.api(), &token, "Leads", &[], None, 1).await,
        Err(CrmError::Provider(ProviderError::Unavailable(_)))
    ));
    assert_eq!(f.state.count("list"), 3);
    f.state.fail_next(1, 400, None);
    assert!(matches!(
        z.deleted(&f.api(), &token, "Leads", None, 1).await,
        Err(CrmError::Provider(ProviderError::Malformed(_)))
    ));
}

#[tokio::test]
async fn a_slow_zoho_times_out_as_unavailable() {
    let f = FakeZoho::start().await;
    let (token, _) = f.state.grant();
    f.state.set_delay(400);
    let z = Zoho::new(Config { timeout: Duration::from_millis(100), ..config(CLIENT_SECRET) });
    let e = z.changed(&f.api(), &token, "Leads", &[], None, 1).await.unwrap_err();
    assert!(matches!(&e, CrmError::Provider(ProviderError::Unavailable(m)) if m.contains("timed out")), "{e:?}");
    assert_eq!(f.state.count("list"), 3);
}

#[tokio::test]
async fn changes_are_paged_two_hundred_at_a_time_oldest_first() {
    let f = FakeZoho::start().await;
    let (token, _) = f.state.grant();
    let t0 = at("2026-02-01T10:00:00Z");
    for i in 0..450 {
        f.state.set_now(t0 + chrono::Duration::seconds(450 - i));
        f.state.insert("Leads", json!({"Last_Name": format!("L{i}"), "Email": format!("p{i}@example.com")}));
    }
    let z = zoho();
    let want = fields(&["Last_Name", "Email"]);
    let mut seen = Vec::new();
    for (page, (len, more)) in [(200, true), (200, true), (50, false)].into_iter().enumerate() {
        let p = z.changed(&f.api(), &token, "Leads", &want, None, page as u32 + 1).await.unwrap();
        assert_eq!((p.records.len(), p.more), (len, more), "page {}", page + 1);
        seen.extend(p.records);
    }
    assert_eq!(f.state.count("list"), 3);
    let times: Vec<&str> = seen.iter().map(|r| r["Modified_Time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    assert_eq!(seen[0]["Last_Name"], "L449");
    assert!(seen.iter().all(|r| r["id"].is_string() && r["Email"].is_string()));
    let ids: std::collections::HashSet<&str> = seen.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 450);
    // Past the end: 204, an empty page.
    let p = z.changed(&f.api(), &token, "Leads", &want, None, 4).await.unwrap();
    assert!(p.records.is_empty() && !p.more);
}

#[tokio::test]
async fn only_records_modified_after_since_are_listed() {
    let f = FakeZoho::start().await;
    let (token, _) = f.state.grant();
    let t0 = at("2026-02-01T10:00:00Z");
    f.state.set_now(t0);
    let ids: Vec<String> = (0..3).map(|i| f.state.insert("Leads", json!({"Last_Name": format!("L{i}")}))).collect();
    f.state.advance(60);
    assert!(f.state.edit("Leads", &ids[1], json!({"Phone": "+18135550000"})));
    let z = zoho();
    let p = z
        .changed(
            &f.api(),
            &token,
            "Leads",
            &fields(&["Last_Name", "Phone"]),
            Some(t0 + chrono::Duration::seconds(30)),
            1,
        )
        .await
        .unwrap();
    assert_eq!(p.records.len(), 1, "{p:?}");
    assert_eq!(
        (p.records[0]["id"].as_str(), p.records[0]["Phone"].as_str()),
        (Some(ids[1].as_str()), Some("+18135550000"))
    );
    assert_eq!(p.records[0]["Modified_Time"], "2026-02-01T10:01:00+00:00");
    // Strictly after: the edit's own time lists nothing (304), as does an empty module (204).
    let p = z.changed(&f.api(), &token, "Leads", &[], Some(t0 + chrono::Duration::seconds(60)), 1).await.unwrap();
    assert!(p.records.is_empty() && !p.more);
    let p = z.changed(&f.api(), &token, "Contacts", &[], None, 1).await.unwrap();
    assert!(p.records.is_empty() && !p.more);
    assert_eq!(z.changed(&f.api(), &token, "Leads", &[], None, 1).await.unwrap().records.len(), 3);
}

#[tokio::test]
async fn deleted_records_are_listed_with_their_time() {
    let f = FakeZoho::start().await;
    let (token, _) = f.state.grant();
    let t0 = at("2026-02-01T10:00:00Z");
    f.state.set_now(t0);
    let ids: Vec<String> = (0..3).map(|i| f.state.insert("Contacts", json!({"Last_Name": format!("L{i}")}))).collect();
    let z = zoho();
    let (none, more) = z.deleted(&f.api(), &token, "Contacts", None, 1).await.unwrap();
    assert!(none.is_empty() && !more, "204");
    f.state.advance(10);
    assert!(f.state.delete("Contacts", &ids[0]));
    f.state.advance(10);
    assert!(f.state.delete("Contacts", &ids[2]));
    assert_eq!(f.state.records("Contacts").len(), 1);

    let (gone, more) = z.deleted(&f.api(), &token, "Contacts", None, 1).await.unwrap();
    assert!(!more);
    let got: Vec<(&str, Option<DateTime<Utc>>)> = gone.iter().map(|d| (d.id.as_str(), d.deleted_at)).collect();
    assert_eq!(
        got,
        vec![(ids[0].as_str(), Some(at("2026-02-01T10:00:10Z"))), (ids[2].as_str(), Some(at("2026-02-01T10:00:20Z")))]
    );
    let (since, _) = z.deleted(&f.api(), &token, "Contacts", Some(at("2026-02-01T10:00:15Z")), 1).await.unwrap();
    assert_eq!(since.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), vec![ids[2].as_str()]);
    assert_eq!(f.state.count("deleted"), 3);
}

#[tokio::test]
async fn a_module_name_that_is_not_one_is_refused_before_any_call() {
    let f = FakeZoho::start().await;
    let (token, _) = f.state.grant();
    let e = zoho().changed(&f.api(), &token, "Leads/../settings", &[], None, 1).await.unwrap_err();
    assert!(matches!(e, CrmError::Provider(ProviderError::Malformed(_))), "{e:?}");
    assert_eq!(f.state.count("api"), 0);
}
