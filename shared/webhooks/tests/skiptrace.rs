//! Skip traces on a real PostgreSQL: the request records a job and gives the provider a
//! callback URL with the job's own token; the callback adds what was found to the right
//! contacts, once, and nothing that belongs to another contact.

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use nextier_domain::ids::ContactId;
use nextier_inbound::skiptrace;
use nextier_platform::ports::skip_tracer::SandboxSkipTracer;
use nextier_testkit::TestDb;
use nextier_webhooks::skip_trace::{self as callback, CallbackState};
use serde_json::{json, Value};
use tower::ServiceExt;

async fn post(r: &axum::Router, path: &str, body: Value) -> (StatusCode, Value) {
    let req =
        Request::post(path).header("content-type", "application/json").body(Body::from(body.to_string())).unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_completed_trace_adds_what_was_found_to_the_right_contacts_once() {
    let t = TestDb::new().await;
    let su = t.superuser().await;
    let team = nextier_testkit::fixtures::team(&t, "T").await;
    let (ana, bo) = (ContactId::new(), ContactId::new());
    for (c, name) in [(&ana, "Ana"), (&bo, "Bo")] {
        su.execute(
            "INSERT INTO contacts (id, team_id, first_name, last_name) VALUES ($1, $2, $3, 'Ruiz')",
            &[&c.as_str(), &team.as_str(), &name],
        )
        .await
        .unwrap();
    }
    su.execute(
        "INSERT INTO contact_addresses (id, team_id, contact_id, line1, city, state, zip)
         VALUES ('row_01JD8Z6Q3M4N5P6R7S8T9V0W1X', $1, $2, '12 Oak St', 'Tampa', 'FL', '33602')",
        &[&team.as_str(), &ana.as_str()],
    )
    .await
    .unwrap();

    let tracer = SandboxSkipTracer::default();
    let key = skiptrace::callback_key();
    let callback = skiptrace::Callback { base_url: "https://hooks.example.com", key: &key };
    let r = skiptrace::request(&t.db, &tracer, &team, &[ana.clone(), ContactId::new()], "usr_x", &callback).await;
    assert!(matches!(r, Err(skiptrace::RequestError::UnknownContact(1))), "{r:?}");
    assert!(tracer.requests().is_empty(), "nothing is asked for an unknown contact");
    let job = skiptrace::request(&t.db, &tracer, &team, &[ana.clone(), bo.clone()], "usr_x", &callback).await.unwrap();
    assert_eq!((job.status.as_str(), job.provider_job_id.as_deref()), ("requested", Some("sandbox-job-1")));
    let (inputs, url) = tracer.requests().remove(0);
    assert_eq!(inputs[0].key, ana.to_string());
    assert_eq!((inputs[0].address.as_deref(), inputs[0].state.as_deref()), (Some("12 Oak St"), Some("FL")));
    let path = url.strip_prefix("https://hooks.example.com").unwrap().to_owned();
    assert!(path.starts_with("/webhooks/skip-trace/") && path.len() > 60, "{path}");

    let r = callback::router(CallbackState::new(t.worker.clone()));
    let results = json!({"jobId": "sandbox-job-1", "status": "completed", "results": [
        {"key": ana.to_string(), "output": {
            "identity": {"names": [{"first_name": "Ana"}]},
            "phones": [{"phone_number": "3126181234", "phone_type": "Mobile", "carrier": "Verizon Wireless", "is_connected": true},
                       {"phone_number": "3126185555", "phone_type": "mobile", "is_connected": false},
                       {"phone_number": "555", "phone_type": "mobile"}],
            "emails": [{"email": "Ana.Ruiz@Example.com"}, "not-an-email"]}},
        {"key": bo.to_string(), "output": {"phones": [{"phone_number": "(312) 618-1234", "phone_type": "landline"}]}},
        {"key": "con_01JD8Z6Q3M4N5P6R7S8T9V0W1X", "output": {"phones": [{"phone_number": "4155238800"}]}}]});

    // A token no job has, and a job id that does not match: refused, nothing applied.
    assert_eq!(post(&r, "/webhooks/skip-trace/not-a-token", results.clone()).await.0, StatusCode::NOT_FOUND);
    let unknown = nextier_domain::callback_token::sign(&key, "01jnotajob");
    assert_eq!(post(&r, &format!("/webhooks/skip-trace/{unknown}"), results.clone()).await.0, StatusCode::NOT_FOUND);
    // A forged token is refused before any database work: a webhook whose database is down
    // answers 404 to it, not 503.
    let forged = nextier_domain::callback_token::sign(b"someone else's key", path.rsplit('/').next().unwrap());
    let offline = nextier_store::Db::connect("postgres://nextier_worker@127.0.0.1:9/none", 1).unwrap();
    let down = callback::router(CallbackState::new(offline));
    assert_eq!(post(&down, &format!("/webhooks/skip-trace/{forged}"), results.clone()).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        post(&down, &path, results.clone()).await.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "a real token reaches the database"
    );
    let mut wrong = results.clone();
    wrong["jobId"] = json!("someone-elses-job");
    let (s, v) = post(&r, &path, wrong).await;
    assert_eq!((s, v["errors"][0]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("jobId")));
    assert_eq!(post(&r, &path, json!([1])).await.0, StatusCode::BAD_REQUEST);

    let (s, v) = post(&r, &path, results.clone()).await;
    assert_eq!((s, v["duplicate"].as_bool()), (StatusCode::OK, Some(false)), "{v}");
    let phones: Vec<(String, String, String, Option<String>)> = su
        .query("SELECT contact_id, e164, type::text, carrier FROM contact_phones ORDER BY e164", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        phones,
        vec![(ana.to_string(), "+13126181234".into(), "mobile".into(), Some("Verizon Wireless".into()))],
        "a disconnected or invalid number is not added, and Bo does not get Ana's number"
    );
    let emails: Vec<String> =
        su.query("SELECT email FROM contact_emails", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(emails, ["ana.ruiz@example.com"]);
    let summary: Value = su.query_one("SELECT summary FROM skip_trace_jobs", &[]).await.unwrap().get(0);
    assert_eq!(summary, json!({"contacts": 2, "phonesAdded": 1, "emailsAdded": 1, "unmatched": 1}));
    let events: i64 =
        su.query_one("SELECT count(*) FROM contact_events WHERE kind = 'skip_traced'", &[]).await.unwrap().get(0);
    assert_eq!(events, 2);

    // The provider retries: nothing changes.
    let (s, v) = post(&r, &path, results).await;
    assert_eq!((s, v["duplicate"].as_bool()), (StatusCode::OK, Some(true)));
    let n: i64 =
        su.query_one("SELECT count(*) FROM contact_events WHERE kind = 'skip_traced'", &[]).await.unwrap().get(0);
    assert_eq!(n, 2);
}
