//! What a Prometheus scrape shows of each recording, by its exact name.

use std::io;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use tower::{Service, ServiceExt, service_fn};

use super::*;
use crate::classify::{ErrorClass, SharedClassifier};
use crate::error::{Error, Phase};
use crate::lifecycle::{Lifecycle, Lifetime};
use crate::operation::Operation;
use crate::retry::RetryPolicy;

/// A recorder as the example installs it: recommended naming, buckets.
fn recorder() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .with_recommended_naming(true)
        .set_buckets(&[0.001, 0.01, 0.1, 1.0])
        .unwrap()
        .build_recorder()
}

/// The value of the one sample line that starts with `series`.
fn value(text: &str, series: &str) -> f64 {
    let lines: Vec<&str> = text.lines().filter(|line| line.starts_with(series)).collect();
    assert_eq!(lines.len(), 1, "{series} in:\n{text}");
    lines[0].rsplit_once(' ').unwrap().1.parse().unwrap()
}

const POOL: &str = "db_client_connection_pool_name=\"orders\"";

#[test]
fn a_pooled_connection_is_idle_then_used_and_leaves_the_count_when_dropped() {
    let recorder = recorder();
    let handle = recorder.handle();
    let count = |state: &str| {
        let text = handle.render();
        value(
            &text,
            &format!("db_client_connection_count{{{POOL},db_client_connection_state=\"{state}\"}}"),
        )
    };
    metrics::with_local_recorder(&recorder, || {
        // As a lifecycle does when built: the units (`_seconds`).
        describe();
        let pool = PoolMetrics::new("orders");
        pool.max(3);
        let slot = pool.slot();
        assert_eq!((count("idle"), count("used")), (1.0, 0.0));
        slot.check_out();
        slot.check_out(); // twice: still one
        assert_eq!((count("idle"), count("used")), (0.0, 1.0));
        slot.check_in();
        slot.check_in();
        assert_eq!((count("idle"), count("used")), (1.0, 0.0));
        slot.check_out();
        drop(slot); // returned broken: it leaves from `used`
        assert_eq!((count("idle"), count("used")), (0.0, 0.0));
        drop(pool.slot()); // reaped idle
        assert_eq!((count("idle"), count("used")), (0.0, 0.0));

        let waiting = pool.pending();
        let text = handle.render();
        assert_eq!(
            value(&text, &format!("db_client_connection_pending_requests{{{POOL}}}")),
            1.0
        );
        drop(waiting);
        pool.waited(Duration::from_millis(5));
        pool.timed_out();
        pool.created(Duration::from_millis(20));
    });
    let text = handle.render();
    assert_eq!(value(&text, &format!("db_client_connection_max{{{POOL}}}")), 3.0);
    assert_eq!(
        value(&text, &format!("db_client_connection_pending_requests{{{POOL}}}")),
        0.0
    );
    assert_eq!(
        value(
            &text,
            &format!("db_client_connection_use_time_seconds_count{{{POOL}}}")
        ),
        1.0,
        "one return (a connection dropped while used was not returned)"
    );
    assert_eq!(
        value(
            &text,
            &format!("db_client_connection_wait_time_seconds_bucket{{{POOL},le=\"0.01\"}}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("db_client_connection_create_time_seconds_count{{{POOL}}}")
        ),
        1.0
    );
    assert_eq!(
        value(&text, &format!("db_client_connection_timeouts_total{{{POOL}}}")),
        1.0
    );
}

fn op() -> Operation<u32> {
    Operation::autocommit(|_client| Box::pin(async { Ok::<_, io::Error>(7) }))
}

/// Operations through tower's `Retry` over a service that observes each
/// attempt as the session and the pool do, failing `failures[i]` on the
/// `i`th attempt.
async fn run(operation: Operation<u32>, failures: &'static [ErrorClass]) -> Result<u32, Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws")
        .port(5432)
        .dbname("postgres");
    let lifecycle = Lifecycle::new((), config, Lifetime::default(), SharedClassifier::default());
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let inner = service_fn(move |operation: Operation<u32>| {
        let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let observation = lifecycle.observe(&operation);
        observation.run(async move {
            match failures.get(attempt) {
                Some(class) => Err(Error::new(*class, Phase::Execute, io::Error::other("boom"))),
                None => Ok(7),
            }
        })
    });
    let mut service = tower::ServiceBuilder::new()
        .layer(RetryPolicy::for_operations().layer())
        .service(inner);
    service.ready().await?.call(operation).await
}

const SERVER: &str = "db_system_name=\"postgresql\",db_namespace=\"postgres\",\
                      server_address=\"abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws\",server_port=\"5432\"";

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_operation_is_one_duration_over_its_attempts_with_the_last_outcome() {
    let recorder = recorder();
    let handle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    use ErrorClass::*;

    // Two conflicts replayed, then a success: one operation, no error.
    assert_eq!(run(op().named("lookup"), &[Conflict, Conflict]).await.unwrap(), 7);
    let text = handle.render();
    let lookup = format!("{SERVER},db_operation_name=\"lookup\"");
    assert_eq!(
        value(
            &text,
            &format!("db_client_operation_duration_seconds_count{{{lookup}}}")
        ),
        1.0,
        "recorded once the call returned"
    );
    assert_eq!(
        value(
            &text,
            "dsql_client_retries_total{error_type=\"conflict\",dsql_retry_kind=\"operation\"}"
        ),
        2.0
    );

    // A fatal error: not replayed, recorded with its class; no name given,
    // no `db.operation.name`.
    assert!(run(op(), &[Fatal]).await.is_err());
    let text = handle.render();
    assert_eq!(
        value(
            &text,
            &format!("db_client_operation_duration_seconds_count{{{SERVER},error_type=\"fatal\"}}")
        ),
        1.0
    );

    // An operation dropped midway (a timeout above) is `cancelled`.
    let lifecycle = Lifecycle::new(
        (),
        tokio_postgres::Config::new(),
        Lifetime::default(),
        SharedClassifier::default(),
    );
    let operation = op();
    let pending = lifecycle
        .observe(&operation)
        .run(std::future::pending::<Result<u32, Error>>());
    assert!(
        tokio::time::timeout(Duration::from_millis(10), pending)
            .await
            .is_err()
    );
    drop(operation);
    let text = handle.render();
    assert!(
        text.contains("error_type=\"cancelled\""),
        "an abandoned operation:\n{text}"
    );
}

#[test]
fn every_metric_renders_under_its_documented_name_with_its_unit() {
    let recorder = recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        describe();
        histogram!(crate::semconv::metric::DB_CLIENT_OPERATION_DURATION).record(0.002);
        counter!(crate::semconv::metric::DSQL_CLIENT_CONNECTS).increment(1);
        gauge!(crate::semconv::metric::DB_CLIENT_CONNECTION_COUNT).set(1);
    });
    let text = handle.render();
    for line in [
        "# TYPE db_client_operation_duration_seconds histogram",
        "db_client_operation_duration_seconds_bucket{le=\"0.01\"} 1",
        "# TYPE dsql_client_connects_total counter",
        "# TYPE db_client_connection_count gauge",
        "# HELP db_client_connection_count ",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
}
