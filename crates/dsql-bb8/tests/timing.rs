//! Timing properties, in one test binary whose tests run one at a time
//! (a shared lock), asserting lower bounds: reconnections spread over the
//! jitter window, and the connect rate limit holds its rate.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use dsql_bb8::DsqlPool;
use dsql_testkit::Harness;
use dsql_tower::{Lifetime, Operation};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn select_one() -> Operation<()> {
    Operation::autocommit(|client| Box::pin(async move { client.simple_query("SELECT 1").await.map(drop) }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_created_together_reconnect_spread_over_the_jitter_window() {
    let _serial = SERIAL.lock().await;
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let lifetime = Lifetime::new(Duration::from_secs(4), Duration::from_secs(2)).unwrap();
    let pool = DsqlPool::builder(&harness.config)
        .max_size(50)
        .min_idle(50)
        .lifetime(lifetime)
        .idle_timeout(None)
        .connect_rate(100.0, 100)
        .build(harness.tokens.clone())
        .unwrap();

    // All fifty at once.
    let started = Instant::now();
    while pool.state().connections < 50 {
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", pool.state());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let created_in = started.elapsed();

    // Their deadlines, read from checked-out connections, span the window.
    let mut held = Vec::new();
    for _ in 0..50 {
        held.push(pool.get().await.unwrap());
    }
    let deadlines: Vec<Instant> = held.iter().map(|c| c.deadline()).collect();
    drop(held);
    let first = *deadlines.iter().min().unwrap();
    let last = *deadlines.iter().max().unwrap();
    let spread = last.duration_since(first);
    assert!(
        spread >= Duration::from_secs(1),
        "deadlines spread over only {spread:?}"
    );
    assert!(spread <= Duration::from_secs(2) + created_in, "{spread:?}");

    // Under load, the retirements really happen spread out, not in one burst.
    let mut retirements = Vec::new();
    let load: Vec<_> = (0..16)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let until = Instant::now() + Duration::from_secs(6);
                while Instant::now() < until {
                    pool.run(select_one()).await.unwrap();
                }
            })
        })
        .collect();
    let mut seen = pool.state().retired.lifetime;
    let watch_started = Instant::now();
    while watch_started.elapsed() < Duration::from_secs(6) {
        let now = pool.state().retired.lifetime;
        if now > seen {
            retirements.push(watch_started.elapsed());
            seen = now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for task in load {
        task.await.unwrap();
    }
    assert!(retirements.len() >= 10, "{} retirements seen", retirements.len());
    let span = *retirements.last().unwrap() - retirements[0];
    assert!(
        span >= Duration::from_millis(1000),
        "retirements within {span:?}: {retirements:?}"
    );

    pool.close().await;
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_rate_limit_holds_its_rate() {
    let _serial = SERIAL.lock().await;
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    // 40 connections wanted at once, 20 per second allowed after a burst of 5.
    let pool = DsqlPool::builder(&harness.config)
        .max_size(40)
        .min_idle(40)
        .connect_rate(20.0, 5)
        .build(harness.tokens.clone())
        .unwrap();
    let started = Instant::now();
    let mut at_one_second = None;
    while pool.state().connections < 40 {
        if at_one_second.is_none() && started.elapsed() >= Duration::from_secs(1) {
            at_one_second = Some(pool.state().connections);
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", pool.state());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    // (40 - 5) / 20 = 1.75 s at the least.
    assert!(
        elapsed >= Duration::from_millis(1700),
        "40 connects in {elapsed:?}"
    );
    let at_one_second = at_one_second.unwrap();
    assert!(
        at_one_second <= 5 + 20 + 1,
        "{at_one_second} connections after 1 s"
    );
    assert!(pool.state().rate_limited >= 30, "{:?}", pool.state());
    let refused = harness.local.stats().snapshot().refused.total();
    assert_eq!(refused, 0, "the server refused nothing");

    pool.close().await;
    harness.local.shutdown().await;
}
