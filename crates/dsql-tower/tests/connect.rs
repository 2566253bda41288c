//! The connect stack against `dsql-local`: both TLS negotiations, and fatal
//! refusals that must fail fast instead of being retried.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::Harness;
use dsql_auth::{SharedTokenProvider, SigningProvider, SslNegotiation, TokenProvider};
use dsql_local::RefusalReason;
use dsql_tower::{ErrorClass, Operation, OperationExt, Phase, Session};

fn select_one() -> Operation<i32> {
    Operation::autocommit(|client| {
        Box::pin(
            async move { Ok::<i32, tokio_postgres::Error>(client.query_one("SELECT 1", &[]).await?.get(0)) },
        )
    })
}

#[tokio::test]
async fn both_tls_negotiations_connect_with_verification() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    for negotiation in [SslNegotiation::Postgres, SslNegotiation::Direct] {
        let config = harness
            .config
            .to_builder()
            .ssl_negotiation(negotiation)
            .build()
            .unwrap();
        let mut session = Session::from_config(&config, harness.tokens.clone()).unwrap();
        assert_eq!(session.run(select_one()).await.unwrap(), 1, "{negotiation:?}");
    }
    harness.local.shutdown().await;
}

#[tokio::test]
async fn a_token_for_the_wrong_action_fails_fast_as_fatal() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    // Connect as admin with a DbConnect token (signed for another user).
    let reader = harness.config.to_builder().user("reader").build().unwrap();
    let wrong = SigningProvider::builder(&reader)
        .credentials_provider(harness.local.credentials())
        .build();
    // A provider that says what it signs for is refused when the stack is
    // built, naming both scopes...
    let error = Session::from_config(&harness.config, SharedTokenProvider::new(wrong.clone())).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("reader@") && message.contains("admin@"),
        "{message}"
    );
    // ... one that cannot say (a closure) reaches the server, which refuses
    // the token: fatal at once, never retried.
    let opaque = dsql_auth::provider::from_fn(move || {
        let wrong = wrong.clone();
        async move { wrong.token().await }
    });
    let mut session = Session::from_config(&harness.config, SharedTokenProvider::new(opaque)).unwrap();

    let started = Instant::now();
    let error = session.run(select_one()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.class(), ErrorClass::Fatal, "{error}");
    assert_eq!(error.phase(), Phase::Connect);
    let report = error.report().to_string();
    assert!(report.contains("Wrong user to action mapping"), "{report}");
    let refused = harness
        .local
        .stats()
        .snapshot()
        .refused
        .get(RefusalReason::WrongAction);
    assert_eq!(refused, 1, "a configuration error is not retried");
    harness.local.shutdown().await;
}

#[tokio::test]
async fn an_untrusted_certificate_fails_fast_as_fatal() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    // The system's roots do not include dsql-local's CA.
    let config = dsql_auth::DsqlConfig::builder()
        .endpoint(harness.config.endpoint().clone())
        .port(harness.config.port())
        .hostaddr(harness.config.hostaddr().unwrap())
        .build()
        .unwrap();
    let Ok(mut session) = Session::from_config(&config, harness.tokens.clone()) else {
        // No system roots at all on this machine: also a refusal to connect.
        return;
    };
    let started = Instant::now();
    let error = session.run(select_one()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.class(), ErrorClass::Fatal, "{error}");
    let report = error.report().to_string();
    assert!(report.to_lowercase().contains("certificate"), "{report}");
    harness.local.shutdown().await;
}
