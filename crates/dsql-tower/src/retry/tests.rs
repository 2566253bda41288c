use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tower::{Service, ServiceExt, service_fn};

use super::*;
use crate::operation::{Effects, Operation};

fn op() -> Operation<u32> {
    Operation::autocommit(|_client| Box::pin(async { Ok::<_, io::Error>(7) }))
}

fn error(class: ErrorClass, phase: Phase) -> Error {
    Error::new(class, phase, io::Error::other("boom"))
}

/// Runs `op` through a retry policy over a service that fails `failures`
/// times with `class`/`phase`, then succeeds; returns (result, calls).
async fn run(
    policy: RetryPolicy,
    op: Operation<u32>,
    class: ErrorClass,
    phase: Phase,
    failures: usize,
) -> (Result<u32, Error>, usize) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let inner = service_fn(move |_op: Operation<u32>| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < failures {
                Err(error(class, phase))
            } else {
                Ok(7)
            }
        }
    });
    let mut service = tower::ServiceBuilder::new().layer(policy.layer()).service(inner);
    let result = service.ready().await.unwrap().call(op).await;
    (result, calls.load(Ordering::SeqCst))
}

#[tokio::test(start_paused = true)]
async fn retryable_classes_are_retried_until_success() {
    for class in [
        ErrorClass::Conflict,
        ErrorClass::Reconnect,
        ErrorClass::Reauthenticate,
        ErrorClass::Throttled,
    ] {
        let (result, calls) = run(RetryPolicy::for_operations(), op(), class, Phase::Execute, 3).await;
        assert_eq!(result.unwrap(), 7, "{class}");
        assert_eq!(calls, 4, "{class}");
    }
}

#[tokio::test(start_paused = true)]
async fn fatal_and_connect_phase_errors_are_not_retried() {
    let (result, calls) = run(
        RetryPolicy::for_operations(),
        op(),
        ErrorClass::Fatal,
        Phase::Execute,
        1,
    )
    .await;
    assert_eq!(result.unwrap_err().class(), ErrorClass::Fatal);
    assert_eq!(calls, 1);

    let (result, calls) = run(
        RetryPolicy::for_operations(),
        op(),
        ErrorClass::Throttled,
        Phase::Connect,
        1,
    )
    .await;
    assert_eq!(result.unwrap_err().phase(), Phase::Connect);
    assert_eq!(calls, 1, "the connect stack owns connect retries");
}

#[tokio::test(start_paused = true)]
async fn unknown_outcomes_are_replayed_only_when_idempotent() {
    let (result, calls) = run(
        RetryPolicy::for_operations(),
        op(),
        ErrorClass::OutcomeUnknown,
        Phase::Commit,
        1,
    )
    .await;
    let error = result.unwrap_err();
    assert!(error.is_outcome_unknown());
    assert_eq!(calls, 1);

    let (result, calls) = run(
        RetryPolicy::for_operations(),
        op().idempotent(),
        ErrorClass::OutcomeUnknown,
        Phase::Commit,
        1,
    )
    .await;
    assert_eq!(result.unwrap(), 7);
    assert_eq!(calls, 2);
}

#[tokio::test(start_paused = true)]
async fn attempts_are_capped_and_reported() {
    let policy = RetryPolicy::for_operations().rule(
        ErrorClass::Conflict,
        Some(RetryRule::new(Backoff::new(ms(1), ms(10)), 4, secs(60))),
    );
    let (result, calls) = run(policy, op(), ErrorClass::Conflict, Phase::Commit, 100).await;
    let error = result.unwrap_err();
    assert_eq!(calls, 4);
    assert_eq!(error.attempts(), 4);
    assert!(error.to_string().contains("after 4 attempts"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn the_retry_window_is_in_seconds() {
    // Delays of up to 1 s, a 3 s window: the retries stop after about 3 s of
    // virtual time whatever the attempt cap.
    let policy = RetryPolicy::for_operations().rule(
        ErrorClass::Reconnect,
        Some(RetryRule::new(Backoff::new(secs(1), secs(1)), 1000, secs(3))),
    );
    let started = tokio::time::Instant::now();
    let (result, calls) = run(policy, op(), ErrorClass::Reconnect, Phase::Execute, usize::MAX).await;
    assert!(result.is_err());
    let elapsed = started.elapsed();
    assert!(elapsed >= secs(3) && elapsed < secs(5), "{elapsed:?}");
    assert!(calls > 2, "{calls}");
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_a_storm_but_not_conflicts() {
    // Budget: 1 retry per second, no credit from successes.
    let policy = RetryPolicy::for_operations().budget(secs(1), 1, 0.0);
    let mut failed = 0;
    for _ in 0..20 {
        let (result, _) = run(policy.clone(), op(), ErrorClass::Reconnect, Phase::Execute, 1).await;
        failed += usize::from(result.is_err());
    }
    assert!(
        failed >= 15,
        "the budget let {} of 20 retries through",
        20 - failed
    );

    for _ in 0..20 {
        let (result, _) = run(policy.clone(), op(), ErrorClass::Conflict, Phase::Commit, 1).await;
        assert_eq!(result.unwrap(), 7, "conflicts do not draw from the budget");
    }
}

#[test]
fn full_jitter_backoff_stays_within_its_window() {
    let backoff = Backoff::new(ms(10), ms(200));
    assert_eq!(backoff.ceiling(0), ms(10));
    assert_eq!(backoff.ceiling(3), ms(80));
    assert_eq!(backoff.ceiling(10), ms(200));
    assert_eq!(backoff.ceiling(u32::MAX), ms(200));
    let delays: Vec<Duration> = (0..2000).map(|_| backoff.delay(10)).collect();
    assert!(delays.iter().all(|d| *d <= ms(200)));
    // Full jitter: the whole window is used, including its low end.
    assert!(delays.iter().any(|d| *d < ms(20)));
    assert!(delays.iter().any(|d| *d > ms(180)));
}

/// The replay rule belongs to the policy: whatever the error says (here a
/// plain error a user's layer made of ours, classified as a conflict by a
/// hostile classifier), an attempt that may have taken effect is replayed
/// only when the operation is idempotent.
#[tokio::test(start_paused = true)]
async fn what_an_attempt_did_decides_whatever_the_classifier_says() {
    for effects in [
        Effects::CommitUnanswered,
        Effects::StatementCompleted,
        Effects::StatementUnanswered,
    ] {
        for idempotent in [false, true] {
            let calls = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&calls);
            let inner = service_fn(move |op: Operation<u32>| {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                op.attempt().set(if n == 0 { effects } else { Effects::None });
                async move {
                    if n == 0 {
                        let ours = Error::new(ErrorClass::Fatal, Phase::Commit, "lost");
                        Err(io::Error::other(ours.report().to_string()))
                    } else {
                        Ok(7)
                    }
                }
            });
            let hostile = |_: &(dyn std::error::Error + 'static)| ErrorClass::Conflict;
            let policy = RetryPolicy::for_operations().classifier(hostile);
            let mut service = tower::ServiceBuilder::new().layer(policy.layer()).service(inner);
            let op = if idempotent { op().idempotent() } else { op() };
            let result = service.ready().await.unwrap().call(op).await;
            let calls = calls.load(Ordering::SeqCst);
            if idempotent {
                assert_eq!(result.unwrap(), 7, "{effects:?}");
                assert_eq!(calls, 2);
            } else {
                assert!(result.is_err(), "{effects:?} replayed");
                assert_eq!(calls, 1, "{effects:?}");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_error_says_why_it_was_not_replayed() {
    let inner = service_fn(move |op: Operation<u32>| {
        op.attempt().set(Effects::StatementCompleted);
        async move { Err::<u32, _>(Error::new(ErrorClass::Conflict, Phase::Execute, "40001")) }
    });
    let mut service = tower::ServiceBuilder::new()
        .layer(RetryPolicy::for_operations().layer())
        .service(inner);
    let error = service.ready().await.unwrap().call(op()).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Conflict);
    assert_eq!(error.not_replayed(), Some(Effects::StatementCompleted.as_str()));
    assert!(error.to_string().contains("not replayed: a statement"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn conflicts_are_bounded_by_their_window_not_a_small_attempt_count() {
    let rule = RetryPolicy::for_operations()
        .rule_for(ErrorClass::Conflict)
        .unwrap();
    assert_eq!(rule.max_attempts, 100);
    assert_eq!(rule.max_elapsed, secs(10));
    // A transaction that loses 40 times in a row (p = 0.76 per attempt
    // under heavy contention: once in 60,000) still commits.
    let (result, calls) = run(
        RetryPolicy::for_operations(),
        op(),
        ErrorClass::Conflict,
        Phase::Commit,
        40,
    )
    .await;
    assert_eq!(result.unwrap(), 7);
    assert_eq!(calls, 41);
}

/// Drops counted: a stand-in for a pooled connection, which returns to its
/// pool when dropped.
struct Connection {
    id: usize,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// A service that, like the pool's, takes back the connection parked by the
/// last attempt (or "checks out" a new one), fails the first `failures`
/// attempts with a conflict and parks the connection; returns the ids of
/// the connections each attempt ran on.
fn parking_service(
    failures: usize,
    checkouts: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    used: Arc<std::sync::Mutex<Vec<usize>>>,
) -> impl Service<Operation<u32>, Response = u32, Error = Error> + Clone {
    service_fn(move |op: Operation<u32>| {
        let connection = op.take_parked::<Connection>().unwrap_or_else(|| Connection {
            id: checkouts.fetch_add(1, Ordering::SeqCst),
            dropped: Arc::clone(&dropped),
        });
        let mut used = used.lock().unwrap();
        used.push(connection.id);
        let attempt = used.len();
        drop(used);
        let result = if attempt <= failures {
            op.park(connection);
            Err(error(ErrorClass::Conflict, Phase::Execute))
        } else {
            Ok(7)
        };
        async move { result }
    })
}

#[tokio::test(start_paused = true)]
async fn a_parked_connection_reaches_the_replay_and_is_dropped_when_the_retry_gives_up() {
    let checkouts = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let used = Arc::new(std::sync::Mutex::new(Vec::new()));

    // Three conflicts, then a commit: every attempt on the first connection.
    let inner = parking_service(3, Arc::clone(&checkouts), Arc::clone(&dropped), Arc::clone(&used));
    let mut service = tower::ServiceBuilder::new()
        .layer(RetryPolicy::for_operations().layer())
        .service(inner);
    assert_eq!(service.ready().await.unwrap().call(op()).await.unwrap(), 7);
    assert_eq!(
        *used.lock().unwrap(),
        [0, 0, 0, 0],
        "the replays ran on the parked connection"
    );
    assert_eq!(checkouts.load(Ordering::SeqCst), 1);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);

    // Always a conflict, three attempts allowed: the retry gives up, and the
    // connection parked by the last attempt is dropped with the request.
    used.lock().unwrap().clear();
    let inner = parking_service(
        usize::MAX,
        Arc::clone(&checkouts),
        Arc::clone(&dropped),
        Arc::clone(&used),
    );
    let policy = RetryPolicy::for_operations().rule(
        ErrorClass::Conflict,
        Some(RetryRule::new(Backoff::new(ms(1), ms(10)), 3, secs(60))),
    );
    let mut service = tower::ServiceBuilder::new().layer(policy.layer()).service(inner);
    let error = service.ready().await.unwrap().call(op()).await.unwrap_err();
    assert_eq!(error.attempts(), 3);
    assert_eq!(*used.lock().unwrap(), [1, 1, 1]);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "nothing stays parked after a give-up"
    );

    // A clone is a new request: it does not see what the original parked.
    let operation = op();
    operation.park(Connection {
        id: 9,
        dropped: Arc::clone(&dropped),
    });
    assert!(operation.clone().take_parked::<Connection>().is_none());
    assert!(operation.replay().unwrap().take_parked::<Connection>().is_some());
    assert_eq!(dropped.load(Ordering::SeqCst), 3);
}
