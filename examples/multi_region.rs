//! One pool over a multi-region cluster: load across a regional outage, and
//! what the pool did.
//!
//! `cargo run --example multi_region` runs against the peered clusters in
//! `CLUSTER_ENDPOINT` (the local region) and `CLUSTER_PEER_ENDPOINTS` (AWS
//! credentials from the default chain), where it only runs the load and
//! reports each endpoint; when they are unset, against two regional
//! `dsql-local` endpoints over the local PostgreSQL, where it cuts the local
//! region off midway, heals it, and prints the timeline: every write
//! acknowledged is in the table exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dsql_auth::{CachingProvider, ClusterSet, SharedTokenProvider, SigningProvider};
use dsql_bb8::DsqlPool;
use dsql_local::{DsqlLocal, RegionsBuilder};
use dsql_rs::BoxError;
use dsql_tower::Operation;
use dsql_tower::failover::{HealthPolicy, Probe};

const TASKS: u64 = 32;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    dsql_rs::init_tracing();
    // A real cluster set, or two regions of dsql-local; one token provider
    // per member (a token is bound to one endpoint host).
    let (cluster, regions, providers) = match ClusterSet::cluster_from_env()? {
        Some(cluster) => {
            let mut providers = Vec::new();
            for member in cluster.members() {
                let signer = SigningProvider::load(member).await;
                providers.push(SharedTokenProvider::new(CachingProvider::new(signer)));
            }
            (cluster, None, providers)
        }
        None => {
            let mut base = DsqlLocal::builder();
            if let Ok(upstream) = std::env::var("DSQL_LOCAL_UPSTREAM") {
                base = base.upstream(upstream);
            }
            let regions = RegionsBuilder::new(base)
                .regions(["us-east-1", "us-east-2"])
                .start()
                .await?;
            let mut members = regions.client_configs("admin")?.into_iter();
            let mut cluster = ClusterSet::new(members.next().ok_or("no region")?);
            for peer in members {
                cluster = cluster.peer_config(peer)?;
            }
            let providers = cluster
                .members()
                .iter()
                .map(|member| {
                    let signer = SigningProvider::builder(member)
                        .credentials_provider(regions.credentials())
                        .build();
                    SharedTokenProvider::new(CachingProvider::new(signer))
                })
                .collect();
            (cluster, Some(regions), providers)
        }
    };
    for (i, member) in cluster.members().iter().enumerate() {
        println!("endpoint {i}: {}", member.endpoint());
    }

    // The heartbeat table the probe commits to: an isolated region may
    // accept connects and answer reads, but it cannot commit.
    let pool = DsqlPool::builder(cluster.local())
        .max_size(16)
        .health_policy(
            HealthPolicy::default()
                .probe_interval(Duration::from_millis(500))
                .failback_ramp(Duration::from_secs(3)),
        )
        .probe(Probe::heartbeat("multi_region_heartbeat"))
        .build_cluster(&cluster, {
            let mut providers = providers.into_iter();
            move |_member| providers.next().expect("one provider per member, in order")
        })?;
    let table = format!("multi_region_{}", std::process::id());
    {
        let setup = pool.get().await?;
        setup
            .batch_execute("CREATE TABLE IF NOT EXISTS multi_region_heartbeat (endpoint text PRIMARY KEY, at timestamptz NOT NULL)")
            .await?;
        setup
            .batch_execute(&format!("CREATE TABLE {table} (id bigint PRIMARY KEY)"))
            .await?;
    }

    // 32 tasks of keyed, idempotent writes (replayed safely wherever they land).
    let stop = Arc::new(AtomicBool::new(false));
    let (acknowledged, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (pool, table, stop) = (pool.clone(), table.clone(), Arc::clone(&stop));
            let (acknowledged, errors) = (Arc::clone(&acknowledged), Arc::clone(&errors));
            tokio::spawn(async move {
                let mut n = 0_i64;
                while !stop.load(Ordering::Relaxed) {
                    let id = task as i64 * 1_000_000 + n;
                    n += 1;
                    let sql = format!("INSERT INTO {table} (id) VALUES ($1) ON CONFLICT DO NOTHING");
                    let write = Operation::transaction(move |tx| {
                        let sql = sql.clone();
                        Box::pin(async move { tx.execute(&sql, &[&id]).await })
                    })
                    .idempotent();
                    match pool.run(write).await {
                        Ok(_) => acknowledged.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            eprintln!("write {id}: {}", error.report());
                            errors.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();

    let started = Instant::now();
    let report = |what: &str| {
        let state = pool.state();
        let endpoints: Vec<String> = state
            .endpoints
            .iter()
            .map(|e| format!("{} {} ({} connections)", short(&e.host), e.state, e.connections))
            .collect();
        println!(
            "{:>6.2}s {what:<24} writes {:>6}  errors {}  {}",
            started.elapsed().as_secs_f64(),
            acknowledged.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed),
            endpoints.join(" | ")
        );
    };
    let tick = |what: &'static str, for_: Duration| {
        let report = &report;
        async move {
            let until = Instant::now() + for_;
            report(what);
            while Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(500)).await;
                report("");
            }
        }
    };
    tick("load on the local region", Duration::from_secs(2)).await;
    if let Some(regions) = &regions {
        regions.local().faults().isolate();
        tick("local region cut off", Duration::from_secs(3)).await;
        regions.local().faults().heal();
        tick("local region healed", Duration::from_secs(5)).await;
    } else {
        tick("load", Duration::from_secs(8)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }

    let rows: i64 = pool
        .get()
        .await?
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await?
        .get(0);
    let acknowledged = acknowledged.load(Ordering::Relaxed);
    println!(
        "{acknowledged} writes acknowledged, {rows} rows in the table, {} errors surfaced",
        errors.load(Ordering::Relaxed)
    );
    let state = pool.state();
    for e in &state.endpoints {
        println!(
            "{}: {} connects, {} connect failures, {} failures, {} trips, {} probes passed, {} moved back",
            short(&e.host),
            e.connects,
            e.connect_failures,
            e.failures,
            e.trips,
            e.probes_passed,
            e.moved_back
        );
    }
    pool.get()
        .await?
        .batch_execute(&format!("DROP TABLE {table}"))
        .await?;
    pool.close().await;
    if let Some(regions) = regions {
        regions.shutdown().await;
    }
    assert_eq!(
        rows as u64, acknowledged,
        "every acknowledged write, exactly once"
    );
    Ok(())
}

/// `abcd….dsql.us-east-1.on.aws` → `us-east-1`.
fn short(host: &str) -> &str {
    host.split('.').nth(2).unwrap_or(host)
}
