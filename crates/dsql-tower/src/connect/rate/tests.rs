use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;

#[tokio::test(start_paused = true)]
async fn spaces_connects_after_the_burst() {
    let limit = Arc::new(ConnectRateLimit::new(10.0, 5).unwrap());
    let started = Instant::now();
    let tasks: Vec<_> = (0..25)
        .map(|_| {
            let limit = Arc::clone(&limit);
            tokio::spawn(async move {
                limit.acquire().await;
                Instant::now()
            })
        })
        .collect();
    let mut times = Vec::new();
    for task in tasks {
        times.push(task.await.unwrap().duration_since(started));
    }
    times.sort();
    // Five at once, then one every 100 ms: the last at 2 s.
    assert_eq!(times.iter().filter(|t| t.is_zero()).count(), 5);
    assert!(times[24] >= Duration::from_millis(1990), "{:?}", times[24]);
    assert!(times[24] <= Duration::from_millis(2010), "{:?}", times[24]);
    for window in times.windows(11) {
        // Never more than burst + rate·Δt in any stretch.
        let span = window[10].saturating_sub(window[0]).as_secs_f64();
        assert!(10.0 <= 5.0 + 10.0 * span + 1e-6, "11 connects within {span} s");
    }
    assert_eq!(limit.waits(), 20);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_gives_its_slot_back() {
    let limit = ConnectRateLimit::new(1.0, 1).unwrap();
    limit.acquire().await; // the burst
    // This one would wait 1 s; it gives up after 100 ms.
    let gave_up = tokio::time::timeout(Duration::from_millis(100), limit.acquire()).await;
    assert!(gave_up.is_err());
    // Its slot is back: the next one waits the 0.9 s that remain, not 1.9 s.
    let started = Instant::now();
    limit.acquire().await;
    let waited = started.elapsed();
    assert!(waited <= Duration::from_millis(910), "{waited:?}");
}

#[test]
fn invalid_rates_are_typed_errors() {
    for (per_second, burst) in [
        (0.0, 1),
        (f64::NAN, 1),
        (-1.0, 1),
        (f64::INFINITY, 1),
        (10.0, 0),
        (101.0, 10),
    ] {
        let error = ConnectRateLimit::new(per_second, burst).unwrap_err();
        assert!(error.to_string().contains("invalid connect rate"), "{error}");
    }
}

#[test]
fn one_limiter_per_endpoint_and_differing_settings_are_refused() {
    let a = ConnectRateLimit::shared("x.dsql.us-east-1.on.aws", 50.0, 10).unwrap();
    let b = ConnectRateLimit::shared("X.dsql.us-east-1.on.aws", 50.0, 10).unwrap();
    let c = ConnectRateLimit::shared("y.dsql.us-east-1.on.aws", 20.0, 5).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(!Arc::ptr_eq(&a, &c));
    let error = ConnectRateLimit::shared("x.dsql.us-east-1.on.aws", 20.0, 5).unwrap_err();
    assert!(matches!(error, RateLimitConflict::Differs { .. }), "{error}");
    assert!(error.to_string().contains("already 50/s"), "{error}");
}
