//! The import worker on a real database and the folder blob store: every bad file ends with
//! a clear status and report, nothing half-imported.

use std::time::Duration;

use nextier_domain::ids::{ImportId, TeamId};
use nextier_domain::import::ImportKind;
use nextier_imports::{Importer, Limits, Ran};
use nextier_platform::local::FolderBlobStore;
use nextier_platform::BlobStore;
use nextier_store::imports::{self, Import};
use nextier_store::{scope, Scope};
use nextier_testkit::TestDb;

struct Fixture {
    t: TestDb,
    team: TeamId,
    blobs: FolderBlobStore,
}

async fn fixture() -> Fixture {
    let t = TestDb::new().await;
    let team = TeamId::new();
    let admin = t.superuser().await;
    admin.execute("INSERT INTO users (id, subject) VALUES ('usr_01JD8Z6Q3M4N5P6R7S8T9V0W1X', 's')", &[]).await.unwrap();
    admin
        .execute("INSERT INTO teams (id, name, slug, created_by) VALUES ($1::text, 'T', $1::text, 'usr_01JD8Z6Q3M4N5P6R7S8T9V0W1X')", &[&team.as_str()])
        .await
        .unwrap();
    let dir = nextier_testkit::state_dir("import-blobs").join(&t.name);
    Fixture { team, blobs: FolderBlobStore::new(dir, "http://127.0.0.1:9", b"secret"), t }
}

impl Fixture {
    async fn job(&self, kind: ImportKind, file: &[u8]) -> ImportId {
        let mut conn = self.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(self.team.clone())).await.unwrap();
        let job = imports::create(&tx, &self.team, kind, "leads.csv", None, Some("test"), "tester").await.unwrap();
        tx.commit().await.unwrap();
        self.blobs.put(&job.object_key, file.to_vec().into(), "text/csv").await.unwrap();
        job.id
    }

    async fn run(&self, id: &ImportId, limits: Limits) -> Ran {
        Importer { db: &self.t.worker, blobs: &self.blobs, limits }.run(&self.team, id).await.unwrap().0
    }

    async fn status(&self, id: &ImportId) -> Import {
        let mut conn = self.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(self.team.clone())).await.unwrap();
        imports::get(&tx, id).await.unwrap()
    }

    async fn report(&self, id: &ImportId) -> String {
        let key = self.status(id).await.report_key.expect("a report");
        String::from_utf8(self.blobs.get(&key).await.unwrap().unwrap().to_vec()).unwrap()
    }

    async fn count(&self, sql: &str) -> i64 {
        self.t.superuser().await.query_one(sql, &[]).await.unwrap().get(0)
    }
}

const LEADS: &str = "First Name,Last Name,Phone,Email,State,Zip,Tags\n\
Ana,Ruiz,(516) 407-9249,ana@example.com,FL,33602,vip\n\
Bo,Li,212-555-1234,,NY,10001,\n\
Cy,Do,not a phone,cy@example.com,TX,73301,\n\
Dee,,5164079249,dee@example.com,,,\n\
Eve,,12,,,,\n";

#[tokio::test]
async fn a_file_becomes_contacts_with_counts_and_a_report() {
    let f = fixture().await;
    let id = f.job(ImportKind::Contacts, LEADS.as_bytes()).await;
    assert_eq!(f.run(&id, Limits::default()).await, Ran::Completed);
    let s = f.status(&id).await;
    assert_eq!(s.status, "completed");
    // Ana, Bo, Cy created; Dee repeats Ana's phone; Eve has nothing reachable.
    assert_eq!((s.rows_read, s.rows_created, s.rows_duplicate, s.rows_rejected), (5, 3, 1, 1));
    assert_eq!(f.count("SELECT count(*) FROM contacts").await, 3);
    assert_eq!(f.count("SELECT count(*) FROM contact_phones").await, 2);
    assert_eq!(f.count("SELECT count(*) FROM contact_events WHERE kind = 'imported'").await, 3);
    // Provenance: what an import brought says so.
    assert_eq!(f.count("SELECT count(*) FROM contact_phones WHERE source = 'import'").await, 2);
    assert_eq!(f.count("SELECT count(*) FROM contact_emails WHERE source <> 'import'").await, 0);
    let report = f.report(&id).await;
    assert!(report.starts_with("row,column,reason,value\n"));
    assert!(report.contains("4,phone,has letters or symbols"), "{report}");
    assert!(report.contains("6,(row),rejected"), "{report}");
    assert_eq!(f.count("SELECT count(*) FROM import_rows").await, 0, "staging is cleaned up");
}

#[tokio::test]
async fn importing_the_same_file_again_changes_nothing() {
    let f = fixture().await;
    let first = f.job(ImportKind::Contacts, LEADS.as_bytes()).await;
    f.run(&first, Limits::default()).await;
    let before: String =
        f.t.superuser()
            .await
            .query_one("SELECT string_agg(id || updated_at::text, ',' ORDER BY id) FROM contacts", &[])
            .await
            .unwrap()
            .get(0);
    let second = f.job(ImportKind::Contacts, LEADS.as_bytes()).await;
    assert_eq!(f.run(&second, Limits::default()).await, Ran::Completed);
    let s = f.status(&second).await;
    assert_eq!((s.rows_created, s.rows_merged, s.rows_unchanged), (0, 0, 3));
    let after: String =
        f.t.superuser()
            .await
            .query_one("SELECT string_agg(id || updated_at::text, ',' ORDER BY id) FROM contacts", &[])
            .await
            .unwrap()
            .get(0);
    assert_eq!(before, after, "not even updated_at moved");
    // A later file with new facts fills blanks on the existing contact.
    let third = f.job(ImportKind::Contacts, b"phone,last name,tags\n212 555 1234,Li-Smith,new\n").await;
    f.run(&third, Limits::default()).await;
    let s = f.status(&third).await;
    assert_eq!((s.rows_created, s.rows_merged), (0, 1));
    assert_eq!(
        f.count("SELECT count(*) FROM contacts WHERE last_name = 'Li' AND tags = '{new}'").await,
        1,
        "blanks filled, names kept"
    );
}

#[tokio::test]
async fn encodings_quoting_and_ragged_rows_are_handled() {
    let f = fixture().await;
    let mut file = b"\xef\xbb\xbfname,phone,notes\n".to_vec();
    file.extend_from_slice(b"\"Ruiz, Ana\nMaria\",5164079249,x\n"); // quoted comma and newline
    file.extend_from_slice(b"Jos\xe9,2125551234\n"); // Latin-1, and one cell short
    let id = f.job(ImportKind::Contacts, &file).await;
    assert_eq!(f.run(&id, Limits::default()).await, Ran::Completed);
    assert_eq!(f.status(&id).await.rows_created, 2);
    assert_eq!(f.count("SELECT count(*) FROM contacts WHERE first_name = 'José'").await, 1);
    assert_eq!(f.count("SELECT count(*) FROM contacts WHERE first_name = 'Ruiz,'").await, 1);
    assert!(f.report(&id).await.contains("3,(row),has 2 cells where the header has 3"));
}

#[tokio::test]
async fn empty_binary_headerless_and_header_only_files_end_clearly() {
    let f = fixture().await;
    for (file, expect) in [
        (&b""[..], "the file is empty"),
        (&b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00"[..], "not CSV text"),
        (&b"name,city\nAna,Tampa\n"[..], "no column holds a phone or an email"),
    ] {
        let id = f.job(ImportKind::Contacts, file).await;
        match f.run(&id, Limits::default()).await {
            Ran::Failed(reason) => assert!(reason.contains(expect), "{reason}"),
            other => panic!("{other:?}"),
        }
        let s = f.status(&id).await;
        assert_eq!((s.status.as_str(), s.error.as_deref().is_some_and(|e| e.contains(expect))), ("failed", true));
    }
    let id = f.job(ImportKind::Contacts, b"phone,email\n").await;
    assert_eq!(f.run(&id, Limits::default()).await, Ran::Completed);
    assert_eq!(f.status(&id).await.rows_read, 0);
    assert_eq!(f.count("SELECT count(*) FROM contacts").await, 0);
}

#[tokio::test]
async fn ten_thousand_invalid_phones_are_each_reported_and_formulas_neutralised() {
    let f = fixture().await;
    let mut file = String::from("phone,name\n");
    for i in 0..10_000 {
        file.push_str(&format!("=cmd|' /C calc'!A{i},Bad\n"));
    }
    file.push_str("5164079249,Good\n");
    let id = f.job(ImportKind::Contacts, file.as_bytes()).await;
    f.run(&id, Limits { chunk_rows: 2_000, ..Limits::default() }).await;
    let s = f.status(&id).await;
    assert_eq!((s.rows_read, s.rows_rejected, s.rows_created), (10_001, 10_000, 1));
    let report = f.report(&id).await;
    assert_eq!(report.lines().filter(|l| l.contains(",phone,")).count(), 10_000);
    assert!(report.lines().all(|l| !l.contains(",=cmd")), "a formula came back unescaped");
    assert!(report.contains(",'=cmd|"));
}

#[tokio::test]
async fn a_job_out_of_time_continues_from_its_checkpoint_and_ends_the_same() {
    let f = fixture().await;
    let mut file = String::from("phone,first name,email\n");
    for i in 0..2_500 {
        file.push_str(&format!("(516) 4{:02}-{:04},P{i},p{i}@example.com\n", 10 + i / 10_000, i));
    }
    let id = f.job(ImportKind::Contacts, file.as_bytes()).await;
    let tight = Limits { chunk_rows: 300, budget: Duration::ZERO, ..Limits::default() };
    let mut runs = 0;
    let mut progress = Vec::new();
    loop {
        runs += 1;
        match f.run(&id, tight.clone()).await {
            Ran::Continued => {
                let s = f.status(&id).await;
                assert_eq!(s.size_bytes, Some(file.len() as i64));
                progress.push(s.progress_percent.unwrap());
                continue;
            }
            Ran::Completed => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(runs >= 8, "{runs} runs");
    assert!(
        progress.windows(2).all(|w| w[0] < w[1]) && progress[0] > 0 && *progress.last().unwrap() < 100,
        "{progress:?}"
    );
    let s = f.status(&id).await;
    assert_eq!((s.progress_percent, s.bytes_read), (Some(100), file.len() as i64));
    // Each chunk's progress is on the team's live feed, in order, ending at the whole file.
    let fed: Vec<i64> =
        f.t.superuser()
            .await
            .query(
                "SELECT (data->>'bytesRead')::int8 FROM team_events WHERE type = 'ImportProgress' ORDER BY xid, seq",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert!(fed.windows(2).all(|w| w[0] < w[1]), "{fed:?}");
    assert_eq!(fed.last(), Some(&(file.len() as i64)));
    assert_eq!((s.rows_read, s.rows_created, s.rows_duplicate, s.rows_rejected), (2_500, 2_500, 0, 0));
    assert_eq!(f.count("SELECT count(*) FROM contacts").await, 2_500);
    assert_eq!(
        f.count("SELECT count(DISTINCT first_name) FROM contacts").await,
        2_500,
        "no row staged twice or skipped"
    );
    assert_eq!(
        f.count("SELECT count(*) FROM outbox WHERE kind = 'queue' AND destination = 'lead-import'").await,
        (runs - 1) as i64
    );
    assert_eq!(f.run(&id, Limits::default()).await, Ran::AlreadyFinished, "a duplicate delivery does nothing");
}

#[tokio::test]
async fn b2b_lists_create_businesses_and_owner_roles() {
    let f = fixture().await;
    let file = b"Company,SIC Code,Employees,Annual Revenue,Owner Name,Title,Phone,Zip\n\
Acme Roofing LLC,1761,12,\"$1,200,000\",Ana Ruiz,Owner,5164079249,33602\n\
ACME ROOFING,1761,12,,Bo Li,Sales Manager,2125551234,33602\n\
Tampa Tile Inc.,1743,3,,Cy Do,,3055550299,33604\n";
    let id = f.job(ImportKind::B2b, file).await;
    assert_eq!(f.run(&id, Limits::default()).await, Ran::Completed);
    assert_eq!(
        f.count("SELECT count(*) FROM businesses").await,
        2,
        "Acme Roofing LLC and ACME ROOFING are one business"
    );
    assert_eq!(f.count("SELECT count(*) FROM business_owners").await, 3);
    assert_eq!(f.count("SELECT count(*) FROM business_owners WHERE role = 'owner' AND is_decision_maker").await, 1);
    assert_eq!(
        f.count("SELECT annual_revenue FROM businesses WHERE normalized_name = 'acme roofing'").await,
        1_200_000
    );
}

#[test]
fn queue_messages_name_their_jobs() {
    let team = TeamId::new();
    let id = ImportId::new();
    let s3 = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": format!("imports/{team}/{id}.csv")}}},
                                            {"eventName": "ObjectCreated:Put", "s3": {"object": {"key": format!("imports/{team}/{id}-errors.csv")}}},
                                            {"eventName": "ObjectRemoved:Delete", "s3": {"object": {"key": format!("imports/{team}/{id}.csv")}}}]});
    assert_eq!(nextier_imports::jobs_in(&s3.to_string()), vec![(team.clone(), id.clone())]);
    let cont = serde_json::json!({"teamId": team, "importId": id});
    assert_eq!(nextier_imports::jobs_in(&cont.to_string()), vec![(team, id)]);
    assert!(nextier_imports::jobs_in("{\"Event\":\"s3:TestEvent\"}").is_empty());
    assert!(nextier_imports::jobs_in("not json").is_empty());
}

#[tokio::test]
async fn a_file_over_the_size_cap_fails_and_nothing_of_it_is_merged() {
    let f = fixture().await;
    let mut file = String::from("phone,first name\n");
    for i in 0..2_000 {
        file.push_str(&format!("(516) 41{:01}-{:04},P{i}\n", i / 1_000, i % 1_000));
    }
    let id = f.job(ImportKind::Contacts, file.as_bytes()).await;
    let capped = Limits { chunk_rows: 300, max_bytes: 16 * 1024, ..Limits::default() };
    match f.run(&id, capped).await {
        Ran::Failed(reason) => assert!(reason.contains("larger than"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let s = f.status(&id).await;
    assert_eq!(s.status.as_str(), "failed");
    assert_eq!(f.count("SELECT count(*) FROM contacts").await, 0, "nothing half-written");
}

#[tokio::test]
async fn a_team_that_asks_for_it_gets_each_imports_new_contacts_enriched() {
    let f = fixture().await;
    // Off by default: an import starts no paid work.
    let id = f.job(ImportKind::Contacts, LEADS.as_bytes()).await;
    assert_eq!(f.run(&id, Limits::default()).await, Ran::Completed);
    assert_eq!(f.count("SELECT count(*) FROM enrichment_jobs").await, 0);
    f.t.superuser()
        .await
        .execute(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1::text, 'enrichment', 'auto_after_import', 'yes')",
            &[&f.team.as_str()],
        )
        .await
        .unwrap();
    let other = "First Name,Last Name,Phone\nFay,Lund,(813) 407-2700\nGil,Hart,813-407-2800\n";
    let id = f.job(ImportKind::Contacts, other.as_bytes()).await;
    assert_eq!(f.run(&id, Limits::default()).await, Ran::Completed);
    // One job over the import's two new contacts, its first step staged for the queue.
    assert_eq!(
        f.count(&format!(
            "SELECT count(*) FROM enrichment_jobs WHERE source_kind = 'import' AND source->>'importId' = '{id}' AND total = 2"
        ))
        .await,
        1
    );
    assert_eq!(f.count("SELECT count(*) FROM enrichment_items").await, 2);
    assert_eq!(f.count("SELECT count(*) FROM outbox WHERE destination = 'enrichment'").await, 1);
}
