//! A multi-region cluster: two regional endpoints over the real
//! PostgreSQL, one database, tokens bound to one region, and a region cut
//! off from its peers.

use std::time::Duration;

use dsql_auth::Action;
use dsql_local::{
    DsqlLocal, IsolatedCommits, IsolatedConnects, IsolatedSessions, Isolation, Latency, RefusalReason,
    Regions, TokenRequest, catalog, sign_token,
};
use dsql_testkit::local::{connect, connect_with, db_error, pg_config, sign};
use dsql_testkit::{UPSTREAM, direct, eventually, tls, unique};
use tokio::time::Instant;
use tokio_postgres::error::DbError;
use tokio_postgres::{Client, GenericClient};

const EAST_1: &str = "us-east-1";
const EAST_2: &str = "us-east-2";

/// Two regions, `us-east-1` (local) and `us-east-2`.
async fn start() -> Regions {
    Regions::builder()
        .regions([EAST_1, EAST_2])
        .start()
        .await
        .expect("regions start")
}

fn region<'a>(regions: &'a Regions, name: &str) -> &'a DsqlLocal {
    regions.region(name).expect("a region of the cluster")
}

/// A table made directly upstream, and that connection to look at it.
async fn table(prefix: &str) -> (Client, String) {
    let table = unique(prefix);
    let check = direct().await;
    check
        .batch_execute(&format!("CREATE TABLE {table} (id int PRIMARY KEY)"))
        .await
        .expect("create");
    (check, table)
}

async fn rows(client: &impl GenericClient, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

fn assert_isolated_commit<'a>(error: &'a tokio_postgres::Error, detail: &str) -> &'a DbError {
    let db = db_error(error);
    assert_eq!(db.code().code(), catalog::REGION_ISOLATED_COMMIT.code, "{db:?}");
    assert_eq!(db.message(), catalog::REGION_ISOLATED_COMMIT.message);
    assert_eq!(db.severity(), "ERROR");
    assert_eq!(db.detail(), Some(detail));
    db
}

#[tokio::test]
async fn both_regions_serve_one_database() {
    let regions = start().await;
    let (east1, east2) = (region(&regions, EAST_1), region(&regions, EAST_2));
    assert_eq!(regions.local().host(), east1.host());
    assert_eq!(regions.peers().len(), 1);
    assert!(
        east1.host().ends_with(".dsql.us-east-1.on.aws"),
        "{}",
        east1.host()
    );
    assert!(
        east2.host().ends_with(".dsql.us-east-2.on.aws"),
        "{}",
        east2.host()
    );
    assert_ne!(east1.endpoint().cluster_id(), east2.endpoint().cluster_id());
    assert_ne!(east1.port(), east2.port());
    // One CA for both: a client trusts one PEM file.
    assert_eq!(east1.ca_pem(), regions.ca_pem());
    assert_eq!(east2.ca_path(), regions.ca_path());

    let configs = regions.client_configs("admin").expect("configs");
    let hosts: Vec<&str> = configs.iter().map(|c| c.endpoint().host()).collect();
    assert_eq!(hosts, [east1.host(), east2.host()]);
    assert_eq!(configs[1].endpoint().region(), EAST_2);
    assert_eq!(configs[1].port(), east2.port());
    let url = regions.connection_url("admin");
    let expected = format!(
        "postgres://admin@{}:{},{}:{}/postgres?hostaddr=127.0.0.1,127.0.0.1&sslrootcert=",
        east1.host(),
        east1.port(),
        east2.host(),
        east2.port()
    );
    assert!(url.starts_with(&expected), "{url}");
    let ca: String =
        url::form_urlencoded::byte_serialize(regions.ca_path().to_string_lossy().as_bytes()).collect();
    assert!(url.ends_with(&format!("&sslrootcert={ca}")), "{url}");
    // dsql-auth reads it as the same endpoints, in the same order.
    let set = dsql_auth::ClusterSet::from_url(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(set.members(), configs.as_slice());
    // Each region's own URL stays as it was.
    assert!(east2.connection_url("admin").contains("region=us-east-2"));

    let (check, table) = table("regions_one_db").await;
    let a = connect(east1, "admin").await.expect("us-east-1");
    let b = connect(east2, "admin").await.expect("us-east-2");
    a.execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .await
        .expect("write in us-east-1");
    assert_eq!(rows(&b, &table).await, 1, "read in us-east-2");
    b.batch_execute(&format!("INSERT INTO {table} VALUES (2)"))
        .await
        .expect("write in us-east-2");
    assert_eq!(rows(&a, &table).await, 2, "read in us-east-1");
    assert_eq!(rows(&check, &table).await, 2);
    regions.shutdown().await;
}

#[tokio::test]
async fn a_token_for_one_region_is_refused_by_the_other_and_counted() {
    let regions = start().await;
    let (east1, east2) = (region(&regions, EAST_1), region(&regions, EAST_2));
    let config1 = east1.client_config("admin").expect("config");
    let config2 = east2.client_config("admin").expect("config");
    let token1 = sign(&config1, regions.credentials(), None).await;
    // us-east-1's token, sent to us-east-2.
    let error = match connect_with(&pg_config(&config2, &token1), tls::verify_full(regions.ca_pem())).await {
        Ok(_) => panic!("us-east-2 accepted a token signed for us-east-1"),
        Err(error) => error,
    };
    let db = db_error(&error);
    assert_eq!(db.code().code(), catalog::ACCESS_DENIED.code);
    assert_eq!(db.message(), catalog::ACCESS_DENIED.message);
    let stats2 = east2.stats().snapshot();
    assert_eq!(stats2.tokens_for_other_host, 1, "{stats2:?}");
    assert_eq!(stats2.refused.get(RefusalReason::WrongRegion), 1);
    // Signed for us-east-1's host but us-east-2's region: still another
    // host's token.
    let request = TokenRequest::new(east1.host(), EAST_2, Action::DbConnectAdmin, regions.access_key());
    let token = sign_token(&request).expect("signed");
    assert!(
        connect_with(&pg_config(&config2, &token), tls::verify_full(regions.ca_pem()))
            .await
            .is_err()
    );
    let stats2 = east2.stats().snapshot();
    assert_eq!(stats2.tokens_for_other_host, 2, "{stats2:?}");
    assert_eq!(stats2.refused.get(RefusalReason::WrongHost), 1);
    // Each region's own token is accepted, and not counted.
    connect_with(&pg_config(&config1, &token1), tls::verify_full(regions.ca_pem()))
        .await
        .expect("us-east-1's token in us-east-1");
    connect(east2, "admin")
        .await
        .expect("us-east-2's token in us-east-2");
    assert_eq!(east1.stats().snapshot().tokens_for_other_host, 0);
    assert_eq!(east2.stats().snapshot().tokens_for_other_host, 2);
    regions.shutdown().await;
}

#[tokio::test]
async fn an_isolated_region_refuses_connects_and_cuts_sessions_by_default() {
    let regions = start().await;
    let (east1, east2) = (region(&regions, EAST_1), region(&regions, EAST_2));
    let a = connect(east1, "admin").await.expect("us-east-1");
    let b = connect(east2, "admin").await.expect("us-east-2");

    assert_eq!(east1.faults().isolate(), 1, "one session cut");
    assert_eq!(east1.faults().isolation(), Some(Isolation::default()));
    assert!(eventually(Duration::from_secs(5), || a.is_closed()).await, "cut");
    let error = match connect(east1, "admin").await {
        Ok(_) => panic!("an isolated region accepted a connection"),
        Err(error) => error,
    };
    let db = db_error(&error);
    assert_eq!(db.code().code(), catalog::REGION_ISOLATED.code);
    assert_eq!(db.message(), catalog::REGION_ISOLATED.message);
    assert_eq!(db.severity(), "FATAL");

    // us-east-2 goes on.
    b.simple_query("SELECT 1").await.expect("us-east-2's session");
    connect(east2, "admin")
        .await
        .expect("us-east-2 accepts")
        .simple_query("SELECT 1")
        .await
        .expect("query");
    let stats1 = east1.stats().snapshot();
    assert_eq!(stats1.connects_refused_by_isolation, 1, "{stats1:?}");
    assert_eq!(stats1.refused.get(RefusalReason::RegionIsolated), 1);
    assert_eq!(stats1.sessions_cut_by_isolation, 1);
    let stats2 = east2.stats().snapshot();
    assert_eq!(stats2.refused.total(), 0, "{stats2:?}");
    assert_eq!(stats2.sessions_cut_by_isolation, 0);

    east1.faults().heal();
    assert_eq!(east1.faults().isolation(), None);
    connect(east1, "admin")
        .await
        .expect("healed")
        .simple_query("SELECT 1")
        .await
        .expect("query");
    regions.shutdown().await;
}

#[tokio::test]
async fn an_isolated_region_that_keeps_its_sessions_reads_but_commits_no_write() {
    let regions = start().await;
    let (east1, east2) = (region(&regions, EAST_1), region(&regions, EAST_2));
    let (check, table) = table("regions_isolated").await;
    let mut kept = connect(east1, "admin").await.expect("before the isolation");
    let cut = east1.faults().isolate_with(Isolation {
        connects: IsolatedConnects::Accept,
        open_sessions: IsolatedSessions::Keep,
        commits: IsolatedCommits::Fail,
    });
    assert_eq!(cut, 0);
    let mut accepted = connect(east1, "admin").await.expect("accepted while isolated");
    for client in [&kept, &accepted] {
        client.simple_query("SELECT 1").await.expect("SELECT 1");
        client
            .query_one("SELECT 1", &[])
            .await
            .expect("extended SELECT 1");
    }

    // A transaction that wrote: its COMMIT fails, nothing lands.
    let transaction = kept.transaction().await.expect("BEGIN");
    transaction
        .execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .await
        .expect("writes are taken until COMMIT");
    assert_eq!(rows(&transaction, &table).await, 1, "its own write");
    let error = transaction
        .commit()
        .await
        .expect_err("COMMIT in an isolated region");
    assert_isolated_commit(&error, "The transaction was rolled back.");
    assert_eq!(rows(&check, &table).await, 0, "nothing committed upstream");
    // The session goes on, outside any transaction.
    assert_eq!(rows(&kept, &table).await, 0);
    kept.batch_execute("BEGIN; SELECT 1; COMMIT")
        .await
        .expect("a read-only transaction in one query");

    // The same over the extended protocol, and in one simple query.
    kept.batch_execute("BEGIN").await.expect("BEGIN");
    kept.execute(&format!("INSERT INTO {table} VALUES (2)"), &[])
        .await
        .expect("write");
    let error = kept.execute("COMMIT", &[]).await.expect_err("extended COMMIT");
    assert_isolated_commit(&error, "The transaction was rolled back.");
    let error = kept
        .batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES (3); COMMIT"))
        .await
        .expect_err("COMMIT in one query");
    assert_isolated_commit(&error, "The transaction was rolled back.");
    assert_eq!(rows(&check, &table).await, 0);

    // A transaction aborted before its COMMIT gets PostgreSQL's own answer.
    kept.batch_execute("BEGIN").await.expect("BEGIN");
    kept.batch_execute("SELECT 1/0")
        .await
        .expect_err("division by zero");
    kept.batch_execute("COMMIT")
        .await
        .expect("COMMIT of an aborted transaction rolls back");

    // Reads in a transaction are served, and a read-only COMMIT succeeds.
    let transaction = accepted.transaction().await.expect("BEGIN");
    assert_eq!(rows(&transaction, &table).await, 0);
    transaction.commit().await.expect("read-only COMMIT");

    // Writes in autocommit fail, unapplied, in both protocols.
    let error = accepted
        .execute(&format!("INSERT INTO {table} VALUES (4)"), &[])
        .await
        .expect_err("autocommit INSERT");
    assert_isolated_commit(&error, "The statement was not applied.");
    let error = accepted
        .batch_execute(&format!("INSERT INTO {table} VALUES (5)"))
        .await
        .expect_err("autocommit INSERT, simple query");
    assert_isolated_commit(&error, "The statement was not applied.");
    assert_eq!(rows(&check, &table).await, 0);
    accepted.simple_query("SELECT 1").await.expect("session usable");

    // us-east-2 still commits, and us-east-1 reads it.
    let b = connect(east2, "admin").await.expect("us-east-2");
    b.execute(&format!("INSERT INTO {table} VALUES (6)"), &[])
        .await
        .expect("us-east-2 commits");
    assert_eq!(rows(&accepted, &table).await, 1, "us-east-1 reads it");

    let stats1 = east1.stats().snapshot();
    assert_eq!(stats1.commits_failed_by_isolation, 5, "{stats1:?}");
    assert_eq!(stats1.sessions_cut_by_isolation, 0);
    assert_eq!(east2.stats().snapshot().commits_failed_by_isolation, 0);

    // Healed: everything commits again, in the sessions kept.
    east1.faults().heal();
    let transaction = kept.transaction().await.expect("BEGIN");
    transaction
        .execute(&format!("INSERT INTO {table} VALUES (7)"), &[])
        .await
        .expect("write");
    transaction.commit().await.expect("COMMIT after heal");
    accepted
        .execute(&format!("INSERT INTO {table} VALUES (8)"), &[])
        .await
        .expect("autocommit after heal");
    assert_eq!(rows(&check, &table).await, 3);
    regions.shutdown().await;
}

#[tokio::test]
async fn a_hanging_region_answers_once_healed() {
    let regions = start().await;
    let east1 = region(&regions, EAST_1);
    east1.faults().isolate_with(Isolation {
        connects: IsolatedConnects::Hang,
        ..Isolation::default()
    });
    let config = east1.client_config("admin").expect("config");
    let token = sign(&config, regions.credentials(), None).await;
    let pg = pg_config(&config, &token);
    let ca = regions.ca_pem().to_owned();
    let pending = tokio::spawn(async move { connect_with(&pg, tls::verify_full(&ca)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!pending.is_finished(), "the connect waits while isolated");
    east1.faults().heal();
    let client = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("answered once healed")
        .expect("task")
        .expect("connected");
    client.simple_query("SELECT 1").await.expect("query");
    regions.shutdown().await;
}

#[tokio::test]
async fn latency_is_added_in_one_region_only() {
    let regions = start().await;
    let (east1, east2) = (region(&regions, EAST_1), region(&regions, EAST_2));
    let a = connect(east1, "admin").await.expect("us-east-1");
    let b = connect(east2, "admin").await.expect("us-east-2");
    let delay = Duration::from_millis(400);
    east2.faults().set_latency(Latency::PerQuery(delay));
    let started = Instant::now();
    b.simple_query("SELECT 1").await.expect("us-east-2");
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    let started = Instant::now();
    a.simple_query("SELECT 1").await.expect("us-east-1");
    assert!(started.elapsed() < delay, "{:?}", started.elapsed());
    regions.shutdown().await;
}

#[tokio::test]
async fn regions_share_the_base_configuration() {
    let base = DsqlLocal::builder()
        .upstream(UPSTREAM)
        .session_lifetime(Duration::from_secs(120));
    let regions = dsql_local::RegionsBuilder::new(base)
        .peer(EAST_2, "abcdefghijklmnopqrstuvwxyz")
        .region("eu-west-1")
        .start()
        .await
        .expect("regions start");
    assert_eq!(
        regions.local().host(),
        "abcdefghijklmnopqrstuvwxyz.dsql.us-east-2.on.aws"
    );
    assert!(regions.region(EAST_1).is_none());
    for local in regions.iter() {
        connect(local, "admin")
            .await
            .expect("each region serves")
            .simple_query("SELECT 1")
            .await
            .expect("query");
    }
    let ca = regions.ca_path().to_owned();
    assert!(ca.exists());
    regions.shutdown().await;
    assert!(!ca.exists(), "the temporary CA is removed at shutdown");
}

#[tokio::test]
async fn without_dsqls_dialect_writes_are_told_by_their_keyword() {
    let base = DsqlLocal::builder()
        .upstream(UPSTREAM)
        .dialect(dsql_local::Dialect::Postgres);
    let regions = dsql_local::RegionsBuilder::new(base)
        .regions([EAST_1, EAST_2])
        .start()
        .await
        .expect("regions start");
    let east1 = region(&regions, EAST_1);
    let (check, table) = table("regions_postgres").await;
    let mut client = connect(east1, "admin").await.expect("us-east-1");
    east1.faults().isolate_with(Isolation {
        connects: IsolatedConnects::Accept,
        open_sessions: IsolatedSessions::Keep,
        commits: IsolatedCommits::Fail,
    });
    client.query_one("SELECT 1", &[]).await.expect("read");
    let error = client
        .execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .await
        .expect_err("autocommit INSERT");
    assert_isolated_commit(&error, "The statement was not applied.");
    let error = client
        .batch_execute(&format!("SELECT 1; DELETE FROM {table}"))
        .await
        .expect_err("a write among reads");
    assert_isolated_commit(&error, "The statement was not applied.");
    let transaction = client.transaction().await.expect("BEGIN");
    transaction
        .execute(&format!("INSERT INTO {table} VALUES (2)"), &[])
        .await
        .expect("write in a transaction");
    let error = transaction.commit().await.expect_err("COMMIT");
    assert_isolated_commit(&error, "The transaction was rolled back.");
    assert_eq!(rows(&check, &table).await, 0);
    assert_eq!(east1.stats().snapshot().commits_failed_by_isolation, 3);
    regions.shutdown().await;
}
