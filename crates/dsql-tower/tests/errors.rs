//! Errors: dsql-local's catalog and the client's rule table agree, and an
//! error's chain prints each cause once.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Harness;
use dsql_tower::classify::classify_server_error;
use dsql_tower::{ErrorClass, Operation, OperationExt};

/// Every error dsql-local sends, with every hint it may carry, gets the
/// class a client must give it: the two tables cannot drift apart.
#[test]
fn every_catalog_error_gets_the_class_a_client_must_give_it() {
    let mut checked = 0;
    for error in dsql_local::catalog::ALL {
        assert!(
            !error.client_classes.is_empty(),
            "{error:?} says nothing of its class"
        );
        for variant in error.client_classes {
            let class = classify_server_error(error.code, error.message, variant.hint);
            assert_eq!(
                class.as_str(),
                variant.class,
                "{} {:?} with hint {:?}",
                error.code,
                error.message,
                variant.hint
            );
            checked += 1;
        }
    }
    let variants: usize = dsql_local::catalog::ALL
        .iter()
        .map(|e| e.client_classes.len())
        .sum();
    assert_eq!(checked, variants, "every row was checked");
    assert!(checked >= dsql_local::catalog::ALL.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_message_appears_once_in_the_chain() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let mut session = harness.session();
    harness.local.faults().fail_statement(1);
    let error = session
        .run(Operation::autocommit(|client| {
            Box::pin(async move { client.execute("SELECT 1", &[]).await })
        }))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Conflict);
    let message = dsql_local::catalog::CHANGE_CONFLICT.message;
    let shown = error.to_string();
    assert!(shown.contains("SQLSTATE 40001"), "{shown}");
    let chain = format!("{:#}", anyhow::Error::new(error.clone()));
    assert_eq!(chain.matches(message).count(), 1, "{chain}");
    assert_eq!(error.report().to_string().matches(message).count(), 1);
    harness.local.shutdown().await;
}
