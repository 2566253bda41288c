//! Property-based tests over compositions: deterministic faults from
//! dsql-local × operation kinds × entry points × classifiers, each case
//! checked against a ledger in PostgreSQL.
//!
//! The invariants, whatever the composition:
//! - an acknowledged operation's effect is there exactly once;
//! - an unacknowledged one's at most once;
//! - an operation that is not idempotent is never replayed once its work
//!   may have landed (a `COMMIT` sent, an autocommit statement run): it
//!   fails after one attempt;
//! - with DSQL's classifier, an operation whose failures were all safe to
//!   replay succeeds: no retryable error reaches the caller.
//!
//! CI runs a few dozen cases; for a long run:
//! `PROPTEST_CASES=2000 cargo test --release -p dsql-bb8 --test compositions`.
#![allow(clippy::unwrap_used)]

mod common;

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Harness, direct, unique};
use dsql_auth::SharedTokenProvider;
use dsql_bb8::DsqlPool;
use dsql_local::{CommitDrop, StatementDrop};
use dsql_tower::connect::{self, ConnectStack};
use dsql_tower::retry::RetryPolicy;
use dsql_tower::{DsqlClassifier, Error, ErrorClass, Operation, OperationExt, Session};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tower::ServiceBuilder;

/// What dsql-local does to the case, counted from the case's start.
#[derive(Clone, Copy, Debug)]
enum Fault {
    None,
    /// Statement n fails with 40001.
    FailStatement(u64),
    /// The session is cut at statement n, before or after PostgreSQL ran it.
    DropAtStatement(u64, bool),
    /// The session is cut at the next COMMIT, before or after forwarding it.
    DropAtCommit(bool),
    /// The next n authentications are refused.
    RefuseAuth(u64),
    /// The next n connects are throttled (53400).
    Throttle(u64),
    /// Every session is cut before the case starts.
    DropAll,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// One autocommit statement.
    AutocommitOne,
    /// An autocommit INSERT, then a second statement.
    AutocommitTwo,
    /// BEGIN, INSERT, SELECT, COMMIT.
    Transaction,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// Session under RetryLayer.
    Session,
    /// `DsqlPool::run`.
    PoolRun,
    /// `pool.service()` under RetryLayer.
    PoolService,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    fault: Fault,
    kind: Kind,
    idempotent: bool,
    entry: Entry,
    hostile: bool,
}

fn cases() -> impl Strategy<Value = Case> {
    let fault = prop_oneof![
        Just(Fault::None),
        (1..=4_u64).prop_map(Fault::FailStatement),
        (1..=4_u64, any::<bool>()).prop_map(|(n, after)| Fault::DropAtStatement(n, after)),
        any::<bool>().prop_map(Fault::DropAtCommit),
        (1..=3_u64).prop_map(Fault::RefuseAuth),
        (1..=3_u64).prop_map(Fault::Throttle),
        Just(Fault::DropAll),
    ];
    let kind = prop_oneof![
        Just(Kind::AutocommitOne),
        Just(Kind::AutocommitTwo),
        Just(Kind::Transaction)
    ];
    let entry = prop_oneof![
        Just(Entry::Session),
        Just(Entry::PoolRun),
        Just(Entry::PoolService)
    ];
    (fault, kind, any::<bool>(), entry, any::<bool>()).prop_map(
        |(fault, kind, idempotent, entry, hostile)| Case {
            fault,
            kind,
            idempotent,
            entry,
            hostile,
        },
    )
}

impl Case {
    /// Whether the fault hits after work of the operation may have landed:
    /// then a non-idempotent operation must not be replayed.
    fn unsafe_to_replay(&self) -> bool {
        match (self.kind, self.fault) {
            (Kind::Transaction, Fault::DropAtCommit(_)) => true,
            // BEGIN is 1, COMMIT is 4.
            (Kind::Transaction, Fault::DropAtStatement(4, _)) => true,
            (Kind::AutocommitOne, Fault::DropAtStatement(1, _)) => true,
            (Kind::AutocommitTwo, Fault::DropAtStatement(1 | 2, _)) => true,
            (Kind::AutocommitTwo, Fault::FailStatement(2)) => true,
            _ => false,
        }
    }
}

/// Everything is a conflict: the classifier that would replay anything.
fn hostile(_: &(dyn StdError + 'static)) -> ErrorClass {
    ErrorClass::Conflict
}

struct Env {
    harness: Harness,
    ledger: String,
    next_id: AtomicI64,
    sessions: [Session<ConnectStack<SharedTokenProvider>>; 2],
    pools: [DsqlPool<ConnectStack<SharedTokenProvider>>; 2],
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("ledger", &self.ledger)
            .finish_non_exhaustive()
    }
}

async fn setup() -> Env {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let ledger = unique("compositions");
    direct()
        .await
        .batch_execute(&format!(
            "CREATE TABLE {ledger} (id bigint NOT NULL); CREATE TABLE {ledger}_done (id bigint PRIMARY KEY)"
        ))
        .await
        .unwrap();
    let session = |hostile_classifier: bool| {
        let builder = Session::builder(
            connect::stack(&harness.config, harness.tokens.clone()).unwrap(),
            connect::pg_config(&harness.config),
        );
        if hostile_classifier {
            builder.classifier(hostile).build()
        } else {
            builder.classifier(DsqlClassifier).build()
        }
    };
    let pool = |hostile_classifier: bool| {
        let builder = DsqlPool::builder(&harness.config).max_size(2);
        let builder = if hostile_classifier {
            builder.classifier(hostile)
        } else {
            builder
        };
        builder.build(harness.tokens.clone()).unwrap()
    };
    Env {
        sessions: [session(false), session(true)],
        pools: [pool(false), pool(true)],
        harness,
        ledger,
        next_id: AtomicI64::new(1),
    }
}

fn operation(ledger: &str, case: &Case, id: i64, attempts: Arc<AtomicUsize>) -> Operation<()> {
    let insert = if case.idempotent {
        // Keyed: a replay after a lost answer finds the key and adds nothing.
        format!(
            "WITH claim AS (INSERT INTO {ledger}_done (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id) \
             INSERT INTO {ledger} (id) SELECT id FROM claim"
        )
    } else {
        format!("INSERT INTO {ledger} (id) VALUES ($1)")
    };
    let op = match case.kind {
        Kind::AutocommitOne => Operation::autocommit(move |client| {
            attempts.fetch_add(1, Ordering::SeqCst);
            let insert = insert.clone();
            Box::pin(async move {
                client.execute(&insert, &[&id]).await?;
                Ok::<_, tokio_postgres::Error>(())
            })
        }),
        Kind::AutocommitTwo => Operation::autocommit(move |client| {
            attempts.fetch_add(1, Ordering::SeqCst);
            let insert = insert.clone();
            Box::pin(async move {
                client.execute(&insert, &[&id]).await?;
                client.execute("SELECT 1", &[]).await?;
                Ok::<_, tokio_postgres::Error>(())
            })
        }),
        Kind::Transaction => Operation::transaction(move |tx| {
            attempts.fetch_add(1, Ordering::SeqCst);
            let insert = insert.clone();
            Box::pin(async move {
                tx.execute(&insert, &[&id]).await?;
                tx.execute("SELECT 1", &[]).await?;
                Ok::<_, tokio_postgres::Error>(())
            })
        }),
    };
    if case.idempotent { op.idempotent() } else { op }
}

/// Cuts every session, and lets the clients see it: a statement written to
/// a socket the server already closed has an unknown fate, which is not
/// what this fault is about.
async fn cut_all(env: &Env) {
    env.harness.local.faults().drop_all_sessions();
    tokio::time::sleep(Duration::from_millis(50)).await;
}

async fn run_case(env: &Env, case: Case) -> Result<(), TestCaseError> {
    let id = env.next_id.fetch_add(1, Ordering::SeqCst);
    let attempts = Arc::new(AtomicUsize::new(0));
    let op = operation(&env.ledger, &case, id, Arc::clone(&attempts));
    let faults = env.harness.local.faults();
    faults.clear();
    match case.fault {
        Fault::None => {}
        Fault::FailStatement(n) => faults.fail_statement(n),
        Fault::DropAtStatement(n, after) => faults.drop_at_statement(
            n,
            if after {
                StatementDrop::AfterCompletion
            } else {
                StatementDrop::BeforeForwarding
            },
        ),
        Fault::DropAtCommit(after) => faults.drop_at_next_commit(if after {
            CommitDrop::AfterForwarding
        } else {
            CommitDrop::BeforeForwarding
        }),
        Fault::RefuseAuth(n) => {
            faults.refuse_next_auths(n);
            cut_all(env).await;
        }
        Fault::Throttle(n) => {
            faults.throttle_next_connects(n);
            cut_all(env).await;
        }
        Fault::DropAll => cut_all(env).await,
    }
    let which = usize::from(case.hostile);
    let policy = || {
        let policy = RetryPolicy::for_operations();
        if case.hostile {
            policy.classifier(hostile)
        } else {
            policy
        }
    };
    let result: Result<(), Error> = match case.entry {
        Entry::Session => {
            let mut service = ServiceBuilder::new()
                .layer(policy().layer())
                .service(env.sessions[which].clone());
            service.run(op).await
        }
        Entry::PoolRun => env.pools[which].run(op).await,
        Entry::PoolService => {
            let mut service = ServiceBuilder::new()
                .layer(policy().layer())
                .service(env.pools[which].service());
            service.run(op).await
        }
    };
    faults.clear();
    let landed: i64 = direct()
        .await
        .query_one(
            &format!("SELECT count(*) FROM {} WHERE id = $1", env.ledger),
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    let attempts = attempts.load(Ordering::SeqCst);
    let shown = match &result {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.report().to_string(),
    };
    match &result {
        Ok(()) => prop_assert_eq!(landed, 1, "acknowledged exactly once: {:?} {}", case, shown),
        Err(_) => prop_assert!(landed <= 1, "unacknowledged at most once: {:?} {}", case, shown),
    }
    if case.unsafe_to_replay() && !case.idempotent {
        prop_assert!(
            result.is_err(),
            "{:?}: succeeded after its work may have landed",
            case
        );
        prop_assert_eq!(
            attempts,
            1,
            "replayed after its work may have landed: {:?} {}",
            case,
            shown
        );
    } else if !case.hostile {
        prop_assert!(
            result.is_ok(),
            "a safe failure reached the caller: {:?} {}",
            case,
            shown
        );
    }
    Ok(())
}

#[test]
fn every_composition_keeps_the_ledger_exact() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = runtime.block_on(setup());
    let count = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let mut runner = TestRunner::new(Config {
        cases: count,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&cases(), |case| runtime.block_on(run_case(&env, case)));
    runtime.block_on(async {
        for pool in &env.pools {
            pool.close().await;
        }
        for session in &env.sessions {
            session.close().await;
        }
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
