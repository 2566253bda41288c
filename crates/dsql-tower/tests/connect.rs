//! The connect stack against `dsql-local`: both TLS negotiations, and fatal
//! refusals that must fail fast instead of being retried.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::Harness;
use dsql_auth::{SharedTokenProvider, SigningProvider, SslNegotiation};
use dsql_local::RefusalReason;
use dsql_tower::{ErrorClass, Operation, OperationExt, Phase, Session};

fn select_one() -> Operation<i32> {
    Operation::new(|client| {
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
    let mut session = Session::from_config(&harness.config, SharedTokenProvider::new(wrong)).unwrap();

    let started = Instant::now();
    let error = session.run(select_one()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.class(), ErrorClass::Fatal, "{error}");
    assert_eq!(error.phase(), Phase::Connect);
    assert!(
        error.to_string().contains("Wrong user to action mapping"),
        "{error}"
    );
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
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );
    harness.local.shutdown().await;
}
