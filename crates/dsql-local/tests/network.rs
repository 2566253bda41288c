//! The modelled network (`network_round_trip`): every turn of a
//! conversation costs a round trip, the handshake's included, and pipelined
//! messages share one.

use std::time::Duration;

use dsql_auth::SslNegotiation;
use dsql_local::{DsqlLocal, StatsSnapshot};
use dsql_testkit::local::{connect_with, pg_config, sign, start};
use dsql_testkit::tls;
use tokio::time::Instant;
use tokio_postgres::Client;

/// Long next to loopback and scheduling noise, short for a test.
const RTT: Duration = Duration::from_millis(20);

async fn local() -> DsqlLocal {
    start(DsqlLocal::builder().network_round_trip(RTT)).await
}

/// Connects as `admin` with `negotiation`; the time to connect.
async fn connect(local: &DsqlLocal, negotiation: SslNegotiation) -> (Client, Duration) {
    let config = local
        .client_config("admin")
        .expect("config")
        .to_builder()
        .ssl_negotiation(negotiation)
        .build()
        .expect("config");
    let token = sign(&config, local.credentials(), None).await;
    let pg = pg_config(&config, &token);
    let started = Instant::now();
    let client = connect_with(&pg, tls::verify_full(local.ca_pem()))
        .await
        .expect("connects");
    (client, started.elapsed())
}

fn round_trips(before: StatsSnapshot, local: &DsqlLocal) -> u64 {
    local.stats().snapshot().round_trips - before.round_trips
}

#[tokio::test]
async fn a_query_costs_one_round_trip() {
    let local = local().await;
    let (client, _) = connect(&local, SslNegotiation::Postgres).await;
    let before = local.stats().snapshot();
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        client.simple_query("SELECT 1").await.expect("query");
        times.push(started.elapsed());
    }
    times.sort();
    assert!(times[0] >= RTT, "{times:?}");
    assert!(
        times[2] < RTT * 2,
        "median {:?} for a {RTT:?} round trip",
        times[2]
    );
    assert_eq!(round_trips(before, &local), 5);
    local.shutdown().await;
}

#[tokio::test]
async fn pipelined_queries_share_a_round_trip() {
    let local = local().await;
    let (client, _) = connect(&local, SslNegotiation::Postgres).await;
    let client = std::sync::Arc::new(client);
    let started = Instant::now();
    // tokio-postgres writes the ten queries before it reads any answer.
    let mut queries = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let client = std::sync::Arc::clone(&client);
        queries.spawn(async move { client.simple_query("SELECT 1").await.map(drop) });
    }
    while let Some(result) = queries.join_next().await {
        result.expect("task").expect("query");
    }
    let took = started.elapsed();
    assert!(took >= RTT, "{took:?}");
    assert!(took < RTT * 4, "{took:?}: the line serialised what was pipelined");
    local.shutdown().await;
}

#[tokio::test]
async fn direct_tls_saves_the_ssl_request_round_trip() {
    let local = local().await;
    for negotiation in [SslNegotiation::Postgres, SslNegotiation::Direct] {
        // Warm: the first connect also creates the upstream role.
        connect(&local, negotiation).await;
    }
    tokio::time::sleep(RTT * 2).await;
    let mut turns = Vec::new();
    let mut times = Vec::new();
    for negotiation in [SslNegotiation::Postgres, SslNegotiation::Direct] {
        let before = local.stats().snapshot();
        let (client, took) = connect(&local, negotiation).await;
        // Before the client's Terminate, which would count as a turn.
        turns.push(round_trips(before, &local));
        times.push(took);
        drop(client);
        // Let the client's goodbye pass, so that the next count is clean.
        tokio::time::sleep(RTT * 2).await;
    }
    // SSLRequest, TLS hello, startup, password: direct TLS skips the first.
    assert_eq!(turns, [4, 3], "round trips (SSLRequest, direct); times {times:?}");
    assert!(times[0] >= RTT * 4, "{times:?}");
    assert!(times[1] >= RTT * 3, "{times:?}");
    assert!(times[0] - times[1] > RTT / 2, "{times:?}");
    local.shutdown().await;
}

#[tokio::test]
async fn the_line_closes_with_either_end() {
    let local = local().await;
    let (client, _) = connect(&local, SslNegotiation::Postgres).await;
    assert_eq!(local.faults().drop_all_sessions(), 1);
    let closed = dsql_testkit::eventually(Duration::from_secs(5), || client.is_closed()).await;
    assert!(closed, "the client did not see the server's end");

    let (client, _) = connect(&local, SslNegotiation::Direct).await;
    client.simple_query("SELECT 1").await.expect("query");
    drop(client);
    let stats = local.stats();
    let gone = dsql_testkit::eventually(Duration::from_secs(5), || {
        let now = stats.snapshot();
        now.current_sessions == 0 && now.current_connections == 0
    })
    .await;
    assert!(gone, "the server kept the session: {:?}", stats.snapshot());
    local.shutdown().await;
}

#[tokio::test]
async fn large_messages_pass_both_ways() {
    let local = local().await;
    let (client, _) = connect(&local, SslNegotiation::Direct).await;
    // More than a direction of the line holds (1 MiB) each way.
    let big = 3 * 1024 * 1024;
    let row = client
        .query_one(
            &format!("SELECT repeat('z', {big}), length('{}')", "y".repeat(big)),
            &[],
        )
        .await
        .expect("query");
    assert_eq!(
        (row.get::<_, String>(0).len(), row.get::<_, i32>(1)),
        (big, big as i32)
    );
    local.shutdown().await;
}
