//! One pool over two regional `dsql-local` endpoints (one PostgreSQL: one
//! logical cluster): a region cut off under load, its healing, a fatal
//! refusal that must not fail over, tokens kept to their own host.
//! Every write is checked in PostgreSQL's ledger.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{direct, drop_table, ledger};
use dsql_auth::{CachingProvider, ClusterSet, DsqlConfig, SharedTokenProvider, SigningProvider};
use dsql_bb8::DsqlPool;
use dsql_local::{
    DsqlLocal, IsolatedCommits, IsolatedConnects, IsolatedSessions, Isolation, Regions, RegionsBuilder,
    StatsSnapshot,
};
use dsql_tower::connect::ConnectStack;
use dsql_tower::failover::{EndpointState, Failover, HealthPolicy, Probe};
use dsql_tower::{ErrorClass, Operation};

/// A cluster id no other test uses: the client's connect rate limit is
/// shared per endpoint host in the process.
fn cluster_id(n: u32) -> String {
    use std::sync::atomic::AtomicU32;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("failover{:08}{:06}{n:04}", std::process::id() % 100_000_000, id)
}

async fn regions() -> Regions {
    RegionsBuilder::new(DsqlLocal::builder().upstream(common::UPSTREAM))
        .peer("us-east-1", cluster_id(1))
        .peer("us-east-2", cluster_id(2))
        .start()
        .await
        .expect("regions start")
}

fn cluster(regions: &Regions, user: &str) -> ClusterSet {
    let mut members = regions.client_configs(user).expect("client configs").into_iter();
    let mut cluster = ClusterSet::new(members.next().expect("a local member"));
    for peer in members {
        cluster = cluster.peer_config(peer).expect("a peer");
    }
    cluster
}

fn tokens(regions: &Regions) -> impl FnMut(&DsqlConfig) -> SharedTokenProvider {
    let credentials = regions.credentials();
    move |member| {
        SharedTokenProvider::new(CachingProvider::new(
            SigningProvider::builder(member)
                .credentials_provider(credentials.clone())
                .build(),
        ))
    }
}

/// Short enough for a test: trips at once, probes every 200 ms, moves
/// back over 1 s.
fn policy() -> HealthPolicy {
    HealthPolicy::default()
        .probe_interval(Duration::from_millis(200))
        .probe_timeout(Duration::from_secs(2))
        .failback_ramp(Duration::from_secs(1))
}

async fn heartbeat_table() -> String {
    let table = common::unique("heartbeat");
    direct()
        .await
        .batch_execute(&format!(
            "CREATE TABLE {table} (endpoint text PRIMARY KEY, at timestamptz NOT NULL)"
        ))
        .await
        .expect("heartbeat table");
    table
}

type Pool = DsqlPool<Failover<ConnectStack<SharedTokenProvider>>>;

async fn pool(regions: &Regions, heartbeat: &str, size: u32) -> Pool {
    let cluster = cluster(regions, "admin");
    DsqlPool::builder(cluster.local())
        .max_size(size)
        .connection_timeout(Duration::from_secs(20))
        .health_policy(policy())
        .probe(Probe::heartbeat(heartbeat))
        .build_cluster(&cluster, tokens(regions))
        .expect("pool")
}

fn select_one() -> Operation<()> {
    Operation::autocommit(|client| {
        Box::pin(async move {
            client.query_one("SELECT 1", &[]).await?;
            Ok::<_, tokio_postgres::Error>(())
        })
    })
    .idempotent()
}

/// What the load saw: acknowledged writes (ids), errors by class.
#[derive(Default)]
struct Load {
    acknowledged: std::sync::Mutex<Vec<i64>>,
    unknown: std::sync::Mutex<Vec<i64>>,
    errors: std::sync::Mutex<Vec<String>>,
    reads: AtomicU64,
}

/// `tasks` tasks alternating a keyed write (`write(id)`) and a read until
/// `stop`; returns when they have all stopped.
fn run_load(
    pool: &Pool,
    ledger: &str,
    tasks: i64,
    idempotent: bool,
    stop: Arc<AtomicBool>,
    load: Arc<Load>,
) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let (pool, ledger, stop, load) = (
            pool.clone(),
            ledger.to_owned(),
            Arc::clone(&stop),
            Arc::clone(&load),
        );
        set.spawn(async move {
            let mut n = 0_i64;
            while !stop.load(Ordering::Relaxed) {
                let id = task * 1_000_000 + n;
                n += 1;
                let write = if idempotent {
                    ledger::record(&ledger, id)
                } else {
                    ledger::insert(&ledger, id)
                };
                match pool.run(write).await {
                    Ok(()) => load.acknowledged.lock().unwrap().push(id),
                    Err(e) if e.class() == ErrorClass::OutcomeUnknown => {
                        load.unknown.lock().unwrap().push(id)
                    }
                    Err(e) => load
                        .errors
                        .lock()
                        .unwrap()
                        .push(format!("write {id}: {}", e.report())),
                }
                match pool.run(select_one()).await {
                    Ok(()) => {
                        load.reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => load.errors.lock().unwrap().push(format!("read: {}", e.report())),
                }
            }
        });
    }
    set
}

struct Recovery {
    first_write: Duration,
    full_rate: Duration,
}

/// After a cut: when the first write is acknowledged, and when a 250 ms
/// window first reaches 90% of `rate_before` (writes per second).
async fn full_rate_after(acked: &impl Fn() -> usize, rate_before: f64) -> Recovery {
    let cut = Instant::now();
    let at_cut = acked();
    let mut first_write = None;
    let mut window = (Instant::now(), acked());
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = acked();
        if first_write.is_none() && now > at_cut {
            first_write = Some(cut.elapsed());
        }
        let elapsed = window.0.elapsed();
        if elapsed >= Duration::from_millis(250) {
            let rate = (now - window.1) as f64 / elapsed.as_secs_f64();
            if first_write.is_some() && rate >= 0.9 * rate_before {
                return Recovery {
                    first_write: first_write.unwrap_or_default(),
                    full_rate: cut.elapsed(),
                };
            }
            window = (Instant::now(), now);
        }
        if cut.elapsed() > Duration::from_secs(15) {
            panic!("writes did not reach 90% of {rate_before:.0}/s within 15 s of the cut");
        }
    }
}

/// Waits until `check` holds (polling every 20 ms), up to `within`;
/// returns how long it took.
async fn until(within: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if check() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn snapshot(local: &DsqlLocal) -> StatsSnapshot {
    local.stats().snapshot()
}

/// Region A cut off under 32 tasks of idempotent keyed writes and reads:
/// no error reaches a caller, every acknowledged write is in PostgreSQL
/// exactly once, the pool moves to B, and back to A once A heals, with no
/// connect refused for rate and no token sent to the wrong host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_cut_off_under_load_costs_no_error_and_no_write() {
    let regions = regions().await;
    let (a, b) = (regions.local(), &regions.peers()[0]);
    let heartbeat = heartbeat_table().await;
    let ledger = ledger::create("failover").await;
    let pool = pool(&regions, &heartbeat, 16).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Load::default());
    let mut tasks = run_load(&pool, &ledger, 32, true, Arc::clone(&stop), Arc::clone(&load));

    tokio::time::sleep(Duration::from_millis(700)).await;
    let state = pool.state();
    assert_eq!(state.endpoints[0].state, EndpointState::Healthy, "{state:?}");
    assert_eq!(
        state.endpoints[1].connections, 0,
        "all on the local region first: {state:?}"
    );
    // The cut: A refuses connects, cuts its sessions, fails commits.
    let acked = || load.acknowledged.lock().unwrap().len();
    let before = acked();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rate_before = (acked() - before) as f64 / 0.5;
    let cut = Instant::now();
    a.faults().isolate();
    let recovery = full_rate_after(&acked, rate_before).await;
    let state = pool.state();
    assert!(!state.endpoints[0].state.is_serving(), "{state:?}");
    assert_eq!(state.endpoints[0].connections, 0, "{state:?}");
    println!(
        "isolation: {rate_before:.0} writes/s before; first write at B {:?} after the cut, full rate after {:?}",
        recovery.first_write, recovery.full_rate
    );
    assert!(cut.elapsed() < Duration::from_secs(10));

    // Healing: A's probe passes, connections move back over the ramp.
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.faults().heal();
    let healed = Instant::now();
    let back = until(Duration::from_secs(10), || {
        let state = pool.state();
        state.endpoints[0].state == EndpointState::Healthy && state.endpoints[1].connections == 0
    })
    .await;
    let state = pool.state();
    assert!(back.is_some(), "all connections back at A: {state:?}");
    println!(
        "failback: all connections at A {:?} after healing",
        healed.elapsed()
    );

    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    let errors = load.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} errors reached callers: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(
        load.unknown.lock().unwrap().is_empty(),
        "idempotent writes are replayed, never unknown"
    );
    let acknowledged = load.acknowledged.lock().unwrap().clone();
    let (rows, distinct) = ledger::counts(&ledger).await;
    assert_eq!(rows, distinct, "a write applied twice");
    assert_eq!(
        rows,
        acknowledged.len() as i64,
        "every acknowledged write, and only those"
    );
    assert!(load.reads.load(Ordering::Relaxed) > 0);

    let state = pool.state();
    assert!(state.endpoints[0].trips >= 1, "{state:?}");
    assert!(state.endpoints[0].probes_passed >= 1, "{state:?}");
    assert!(state.retired.failback >= 1, "{state:?}");
    for region in [a, b] {
        let stats = snapshot(region);
        assert_eq!(
            stats.tokens_for_other_host, 0,
            "a token went to the wrong host: {stats:?}"
        );
        assert_eq!(
            stats.refused.get(dsql_local::RefusalReason::RateExceeded),
            0,
            "connects refused for rate: {stats:?}"
        );
    }
    pool.close().await;
    drop_table(&ledger).await;
    drop_table(&heartbeat).await;
    regions.shutdown().await;
}

/// A region that still accepts connects and answers reads but cannot
/// commit (as an isolated region may well do) is left too: commits that
/// fail count against it, reads that succeed do not count for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_that_reads_but_cannot_commit_is_left_too() {
    let regions = regions().await;
    let a = regions.local();
    let heartbeat = heartbeat_table().await;
    let ledger = ledger::create("failover_reads").await;
    let pool = pool(&regions, &heartbeat, 8).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Load::default());
    let mut tasks = run_load(&pool, &ledger, 16, true, Arc::clone(&stop), Arc::clone(&load));
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.faults().isolate_with(Isolation {
        connects: IsolatedConnects::Accept,
        open_sessions: IsolatedSessions::Keep,
        commits: IsolatedCommits::Fail,
    });
    let left = until(Duration::from_secs(10), || {
        let state = pool.state();
        !state.endpoints[0].state.is_serving() && state.endpoints[0].connections == 0
    })
    .await;
    let state = pool.state();
    assert!(left.is_some(), "{state:?}");
    // Probes commit a heartbeat: they keep failing while A cannot commit.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let state = pool.state();
    assert!(state.endpoints[0].probes_failed >= 1, "{state:?}");
    assert_eq!(state.endpoints[0].probes_passed, 0, "{state:?}");
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}

    let errors = load.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} errors: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    let acknowledged = load.acknowledged.lock().unwrap().len() as i64;
    assert_eq!(ledger::counts(&ledger).await, (acknowledged, acknowledged));
    assert!(a.stats().snapshot().commits_failed_by_isolation > 0);
    pool.close().await;
    drop_table(&ledger).await;
    drop_table(&heartbeat).await;
    regions.shutdown().await;
}

/// Non-idempotent transactions in flight when A is cut: only those whose
/// `COMMIT` was sent may end `OutcomeUnknown`; nothing is applied twice;
/// every acknowledged one is in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_cut_mid_commit_are_unknown_never_duplicated() {
    let regions = regions().await;
    let a = regions.local();
    let heartbeat = heartbeat_table().await;
    let ledger = ledger::create("failover_tx").await;
    let pool = pool(&regions, &heartbeat, 16).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Load::default());
    let mut tasks = run_load(&pool, &ledger, 32, false, Arc::clone(&stop), Arc::clone(&load));
    tokio::time::sleep(Duration::from_millis(700)).await;
    a.faults().isolate();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}

    let errors = load.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} errors: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    let (rows, distinct) = ledger::counts(&ledger).await;
    assert_eq!(rows, distinct, "a transaction applied twice");
    let acknowledged = load.acknowledged.lock().unwrap().clone();
    for &id in &acknowledged {
        assert_eq!(ledger::rows(&ledger, id).await, 1, "acknowledged {id} missing");
    }
    let unknown = load.unknown.lock().unwrap().clone();
    for &id in &unknown {
        assert!(ledger::rows(&ledger, id).await <= 1);
    }
    println!(
        "cut mid-load: {} acknowledged, {} outcome unknown",
        load.acknowledged.lock().unwrap().len(),
        unknown.len()
    );
    pool.close().await;
    drop_table(&ledger).await;
    drop_table(&heartbeat).await;
    regions.shutdown().await;
}

/// A role refused at A (a token for another action) is a configuration
/// error: returned at once, typed, and A is not declared unhealthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_role_at_the_local_region_does_not_fail_over() {
    let regions = regions().await;
    let cluster = cluster(&regions, "admin");
    let credentials = regions.credentials();
    // DbConnect tokens (a non-admin role's) sent for admin: "wrong user to
    // action mapping", by a provider that cannot say what it signs for.
    let pool = DsqlPool::builder(cluster.local())
        .build_cluster(&cluster, move |member| {
            let reader = member.to_builder().user("reader").build().unwrap();
            let wrong = SigningProvider::builder(&reader)
                .credentials_provider(credentials.clone())
                .build();
            SharedTokenProvider::new(dsql_auth::provider::from_fn(move || {
                let wrong = wrong.clone();
                async move { dsql_auth::TokenProvider::token(&wrong).await }
            }))
        })
        .unwrap();
    let error = pool.get().await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Fatal, "{error}");
    let state = pool.state();
    assert_eq!(state.endpoints[0].state, EndpointState::Healthy, "{state:?}");
    assert_eq!(state.endpoints[0].failures, 0, "{state:?}");
    assert_eq!(
        state.endpoints[1].connects + state.endpoints[1].connect_failures,
        0,
        "B never tried: {state:?}"
    );
    pool.close().await;
    regions.shutdown().await;
}
