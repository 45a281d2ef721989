//! Secrets read at cold start from Secrets Manager (moto): each `X_SECRET_ARN` becomes the
//! setting `X`; a credentials secret completes a password-less database URL; a secret that
//! cannot be read stops the start, naming the setting.

use aws_sdk_secretsmanager::Client;
use nextier_platform::aws::emulator_config;
use nextier_platform::secrets;
use nextier_runtime::config;
use nextier_testkit::moto;

#[tokio::test]
async fn secrets_become_settings_and_complete_the_database_url() {
    let endpoint = moto::endpoint().await.unwrap();
    let client = Client::new(&emulator_config(&endpoint));
    let suffix = ulid::Ulid::new().to_string().to_lowercase();
    let key = client
        .create_secret()
        .name(format!("nextier-test/signalhouse-{suffix}"))
        .secret_string("sh-live-key-0123")
        .send()
        .await
        .unwrap();
    let db = client
        .create_secret()
        .name(format!("nextier-test/db-{suffix}"))
        .secret_string(r#"{"username": "nextier_app", "password": "s3cr3t/pw"}"#)
        .send()
        .await
        .unwrap();
    // What the template puts in a function's environment: no secret, only where to find it.
    let api_var = format!("NEXTIER_TEST_SH_KEY_{suffix}");
    let db_var = format!("NEXTIER_TEST_DB_URL_{suffix}");
    config::resolve(&db_var, "postgres://nextier_app@proxy.example:5432/nextier?sslmode=verify-full".into());
    let wanted = vec![
        (format!("{api_var}_SECRET_ARN"), key.arn().unwrap().to_owned()),
        (format!("{db_var}_SECRET_ARN"), db.arn().unwrap().to_owned()),
        // Unset where the template has nothing to give (a provider not configured).
        (format!("NEXTIER_TEST_UNUSED_{suffix}_SECRET_ARN"), "".into()),
    ];
    assert_eq!(secrets::load_with(&client, &wanted).await.unwrap(), 2);
    assert_eq!(config::get(&api_var).as_deref(), Some("sh-live-key-0123"));
    assert_eq!(
        config::get(&db_var).as_deref(),
        Some("postgres://nextier_app:s3cr3t%2Fpw@proxy.example:5432/nextier?sslmode=verify-full")
    );

    // A secret that is not there stops the cold start, naming the setting.
    let missing = vec![(
        "NEXTIER_TEST_MISSING_SECRET_ARN".to_owned(),
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-abcdef".to_owned(),
    )];
    let err = secrets::load_with(&client, &missing).await.unwrap_err();
    assert!(format!("{err:#}").contains("NEXTIER_TEST_MISSING"), "{err:#}");
    assert_eq!(config::get("NEXTIER_TEST_MISSING"), None);
}

#[tokio::test]
async fn without_secret_arns_nothing_is_read_and_no_client_is_made() {
    // The local runtime and the tests: no `_SECRET_ARN` in the environment.
    assert!(config::vars_ending(secrets::SUFFIX).is_empty());
    assert_eq!(secrets::load().await.unwrap(), 0);
}
