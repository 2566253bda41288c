//! The axum example (`examples/http_service.rs`, included here) under load:
//! `/metrics` shows the series the README documents, by their exact
//! Prometheus names, with plausible values, and neither it nor the spans
//! carry a token or a query parameter.
//!
//! One test in its own binary: the metrics recorder and the tracing
//! subscriber are global to the process.
#![allow(clippy::unwrap_used)]

#[path = "../examples/http_service.rs"]
#[allow(dead_code)] // its `main` is the example's
mod http_service;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dsql_auth::TokenProvider;
use dsql_bb8::DsqlPool;
use dsql_rs::Target;
use tokio::net::TcpListener;

use crate::http_service::{App, create_table, http_get, install_metrics, load, router};

/// Fewer connections than clients: checkouts must wait.
const MAX_SIZE: u32 = 4;
const CLIENTS: i64 = 16;
const POOL: &str = "http_service_test";
/// dsql-local's modelled network: every operation takes at least this, a
/// bucket's bound (10 ms) that operations on loopback finish under.
const ROUND_TRIP: Duration = Duration::from_millis(10);

/// Every series the example must show after the load, by its exact name.
const SERIES: &[&str] = &[
    "db_client_operation_duration_seconds_bucket",
    "db_client_operation_duration_seconds_sum",
    "db_client_operation_duration_seconds_count",
    "db_client_connection_count",
    "db_client_connection_max",
    "db_client_connection_pending_requests",
    "db_client_connection_wait_time_seconds_bucket",
    "db_client_connection_wait_time_seconds_sum",
    "db_client_connection_wait_time_seconds_count",
    "db_client_connection_create_time_seconds_bucket",
    "db_client_connection_create_time_seconds_sum",
    "db_client_connection_create_time_seconds_count",
    "db_client_connection_use_time_seconds_bucket",
    "db_client_connection_use_time_seconds_sum",
    "db_client_connection_use_time_seconds_count",
    "dsql_client_connects_total",
    "dsql_client_connection_retirements_total",
    "dsql_auth_token_signings_total",
    "dsql_auth_token_refreshes_total",
];

/// The only labels any series may carry (`le`: a bucket's bound).
const LABELS: &[&str] = &[
    "db_system_name",
    "db_namespace",
    "db_operation_name",
    "db_response_status_code",
    "error_type",
    "server_address",
    "server_port",
    "db_client_connection_pool_name",
    "db_client_connection_state",
    "dsql_retry_kind",
    "dsql_retirement_reason",
    "dsql_probe_result",
    "le",
];

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Prometheus' text format, the lines that are samples.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once("=\"").unwrap();
                    (key.to_owned(), value.trim_end_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap(),
            }
        })
        .collect()
}

/// The shortest of a few `SELECT 1` on one connection: the round trip as a
/// client sees it.
async fn measured_round_trip(pool: &DsqlPool) -> Duration {
    let connection = pool.get().await.unwrap();
    let mut shortest = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        connection.simple_query("SELECT 1").await.unwrap();
        shortest = shortest.min(started.elapsed());
    }
    shortest
}

/// The sum of `name` over the samples whose labels include `with`.
fn total(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

async fn scrape(addr: std::net::SocketAddr) -> (String, Vec<Sample>) {
    let (status, text) = http_get(addr, "/metrics").await.unwrap();
    assert_eq!(status, 200, "{text}");
    let samples = parse(&text);
    (text, samples)
}

/// A writer keeping what the tracing subscriber prints.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_show_the_documented_series_under_load() {
    // Every closed span of the libraries, with its fields.
    let traces = Captured::default();
    let writer = traces.clone();
    tracing_subscriber::fmt()
        .with_env_filter("dsql_tower=info,dsql_bb8=info,dsql_auth=debug")
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let prometheus = install_metrics().unwrap();
    // Sessions cut every 2 s and 4 s tokens: reconnects, retirements and
    // token refreshes within the run.
    let target = Target::from_env_or_local_with(
        |local| {
            local
                .session_lifetime(Duration::from_secs(2))
                .network_round_trip(ROUND_TRIP)
        },
        Some(Duration::from_secs(4)),
    )
    .await
    .unwrap();
    let pool: DsqlPool = DsqlPool::builder(&target.config)
        .max_size(MAX_SIZE)
        .pool_name(POOL)
        .build(target.tokens.clone())
        .unwrap();
    let table = create_table(&pool).await.unwrap();
    let round_trip = measured_round_trip(&pool).await;
    let app = Arc::new(App {
        pool: pool.clone(),
        table: table.clone(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router(app, prometheus)).await });

    let until = Instant::now() + Duration::from_secs(6);
    let clients = tokio::spawn(load(addr, CLIENTS, until));
    let pool_label = [("db_client_connection_pool_name", POOL)];
    let (mut scrapes, mut most_pending, mut most_used) = (0, 0.0_f64, 0.0_f64);
    while Instant::now() < until {
        let (text, samples) = scrape(addr).await;
        let count = |state: &str| {
            total(
                &samples,
                "db_client_connection_count",
                &[pool_label[0], ("db_client_connection_state", state)],
            )
        };
        let (idle, used) = (count("idle"), count("used"));
        assert!(idle >= 0.0 && used >= 0.0, "{text}");
        // Each state on its own: a scrape reads the two series one after
        // the other, and a connection checked out between the two reads
        // counts in both (seen under load), so their sum is checked at rest.
        assert!(
            idle <= f64::from(MAX_SIZE) && used <= f64::from(MAX_SIZE),
            "idle {idle} or used {used} above max: {text}"
        );
        assert_eq!(
            total(&samples, "db_client_connection_max", &pool_label),
            f64::from(MAX_SIZE)
        );
        most_pending = most_pending.max(total(
            &samples,
            "db_client_connection_pending_requests",
            &pool_label,
        ));
        most_used = most_used.max(used);
        scrapes += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, failed) = clients.await.unwrap();
    assert_eq!(failed, 0, "idempotent visits are replayed through cuts");
    assert!(ok > 100, "only {ok} requests answered");
    assert!(scrapes >= 10, "{scrapes} scrapes");
    assert!(
        most_pending > 0.0,
        "{CLIENTS} clients on {MAX_SIZE} connections never waited"
    );
    assert!(most_used > 0.0);

    let (text, samples) = scrape(addr).await;
    for name in SERIES {
        assert!(samples.iter().any(|s| s.name == *name), "{name} missing:\n{text}");
    }
    for sample in &samples {
        for (key, value) in &sample.labels {
            assert!(LABELS.contains(&key.as_str()), "label {key} on {sample:?}");
            // Numbers only where a number is the point: no request id.
            let numeric = !value.is_empty() && value.chars().all(|c| c.is_ascii_digit());
            assert!(
                !numeric || ["server_port", "db_response_status_code", "le"].contains(&key.as_str()),
                "label {key}={value} on {sample:?}"
            );
        }
    }

    // Operations: one per request (replays inside), named, timed.
    let visits = [("db_operation_name", "visit"), ("db_system_name", "postgresql")];
    let operations = total(&samples, "db_client_operation_duration_seconds_count", &visits);
    assert!(
        operations >= ok as f64,
        "{operations} operations for {ok} answered requests"
    );
    let seconds = total(&samples, "db_client_operation_duration_seconds_sum", &visits);
    assert!(
        seconds / operations > round_trip.as_secs_f64(),
        "operations took {:.3} ms on average, under the {round_trip:?} round trip",
        seconds / operations * 1000.0
    );
    if target.local.is_some() {
        // Not one operation finished within the round trip: each paid at
        // least one.
        let quick = [("le", "0.01"), visits[0]];
        assert!(
            samples
                .iter()
                .any(|s| s.name == "db_client_operation_duration_seconds_bucket"
                    && s.labels.get("le").map(String::as_str) == Some("0.01")),
            "no 10 ms bucket:\n{text}"
        );
        assert_eq!(
            total(&samples, "db_client_operation_duration_seconds_bucket", &quick),
            0.0,
            "operations faster than the round trip:\n{text}"
        );
    }
    let host = target.config.endpoint().host();
    assert!(
        total(
            &samples,
            "db_client_operation_duration_seconds_count",
            &[
                ("server_address", host),
                ("db_namespace", target.config.database())
            ],
        ) >= ok as f64
    );
    let all = [("le", "+Inf"), visits[0]];
    assert_eq!(
        total(&samples, "db_client_operation_duration_seconds_bucket", &all),
        operations,
        "a histogram with buckets, not a summary"
    );

    // The pool: waits, since tasks outnumber connections; nothing left
    // waiting or checked out.
    let waits = total(
        &samples,
        "db_client_connection_wait_time_seconds_count",
        &pool_label,
    );
    assert!(waits >= ok as f64, "{waits} checkouts for {ok} operations");
    assert!(
        total(
            &samples,
            "db_client_connection_wait_time_seconds_sum",
            &pool_label
        ) > 0.0
    );
    let quick = [("le", "0.001"), pool_label[0]];
    assert!(
        total(&samples, "db_client_connection_wait_time_seconds_bucket", &quick) < waits,
        "no checkout waited a millisecond or more"
    );
    assert!(total(&samples, "db_client_connection_use_time_seconds_sum", &pool_label) > 0.0);
    assert!(
        total(
            &samples,
            "db_client_connection_create_time_seconds_count",
            &pool_label
        ) >= 1.0
    );
    assert_eq!(
        total(&samples, "db_client_connection_pending_requests", &pool_label),
        0.0
    );
    let used = [pool_label[0], ("db_client_connection_state", "used")];
    assert_eq!(
        total(&samples, "db_client_connection_count", &used),
        0.0,
        "{text}"
    );
    let idle = [pool_label[0], ("db_client_connection_state", "idle")];
    let at_rest = total(&samples, "db_client_connection_count", &idle);
    assert!(
        (0.0..=f64::from(MAX_SIZE)).contains(&at_rest),
        "{at_rest} idle connections at rest, max {MAX_SIZE}: {text}"
    );

    // Connects, retirements (the 2 s cuts), tokens.
    assert!(
        total(
            &samples,
            "dsql_client_connects_total",
            &[("server_address", host)]
        ) >= 1.0
    );
    assert!(total(&samples, "dsql_client_connection_retirements_total", &[]) >= 1.0);
    assert!(
        total(
            &samples,
            "dsql_auth_token_signings_total",
            &[("server_address", host)]
        ) >= 2.0
    );
    assert!(total(&samples, "dsql_auth_token_refreshes_total", &[]) >= 2.0);

    // No token, no query parameter, in the metrics or the spans.
    let token = target.tokens.token().await.unwrap();
    let spans = String::from_utf8(traces.0.lock().unwrap().clone()).unwrap();
    for (what, text) in [("metrics", &text), ("spans", &spans)] {
        assert!(!text.contains(token.expose_secret()), "a token in the {what}");
        assert!(!text.contains("X-Amz-Signature"), "a token in the {what}");
    }
    assert!(!spans.contains("1000000000"), "a request id in the spans");
    for field in [
        "dsql.operation",
        "otel.kind=\"client\"",
        "db.system.name=\"postgresql\"",
        "db.operation.name=\"visit\"",
        "dsql.attempts=",
        "dsql.connect",
        "otel.name=\"connect\"",
    ] {
        assert!(spans.contains(field), "{field} missing from the spans");
    }
    assert!(
        spans.contains(&format!("server.address={host}")),
        "server.address missing"
    );

    server.abort();
    pool.get()
        .await
        .unwrap()
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
    pool.close().await;
    target.shutdown().await;
}
