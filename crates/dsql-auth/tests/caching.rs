//! `CachingProvider`: single flight, refresh ahead, failures, invalidation.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dsql_auth::clock::{Clock, ManualClock};
use dsql_auth::{AuthToken, CachingProvider, TokenError, TokenProvider};

const START: u64 = 1_800_000_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A provider that mints a numbered token of `lifetime` per call, can be made
/// to fail, and takes `delay` to answer.
#[derive(Debug, Clone)]
struct Minter {
    clock: ManualClock,
    lifetime: Duration,
    delay: Duration,
    calls: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    invalidated: Arc<AtomicUsize>,
}

impl Minter {
    fn new(clock: &ManualClock, lifetime: Duration, delay: Duration) -> Self {
        Self {
            clock: clock.clone(),
            lifetime,
            delay,
            calls: Arc::default(),
            failing: Arc::default(),
            invalidated: Arc::default(),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl TokenProvider for Minter {
    async fn token(&self) -> Result<AuthToken, TokenError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.delay).await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(TokenError::provider("signer unavailable"));
        }
        let now = self.clock.now();
        Ok(AuthToken::new(format!("token-{n}"), now, now + self.lifetime))
    }

    fn invalidate(&self, _rejected: &AuthToken) {
        self.invalidated.fetch_add(1, Ordering::SeqCst);
    }
}

fn cache(minter: &Minter, clock: &ManualClock) -> CachingProvider<Minter> {
    CachingProvider::builder(minter.clone())
        .refresh_fraction(0.8)
        .min_remaining(Duration::from_secs(30))
        .retry_after_failure(Duration::from_secs(5))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_make_one_inner_call() {
    let clock = ManualClock::new(at(START));
    let minter = Minter::new(&clock, Duration::from_secs(900), Duration::from_millis(100));
    let cache = cache(&minter, &clock);

    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let cache = cache.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                cache.token().await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().expose_secret(), "token-1");
    }
    assert_eq!(minter.calls(), 1);
}

#[tokio::test]
async fn refreshes_in_the_background_past_the_refresh_point() {
    let clock = ManualClock::new(at(START));
    let minter = Minter::new(&clock, Duration::from_secs(900), Duration::from_millis(10));
    let cache = cache(&minter, &clock);

    assert_eq!(cache.token().await.unwrap().expose_secret(), "token-1");
    clock.advance(Duration::from_secs(719)); // before 80 %
    assert_eq!(cache.token().await.unwrap().expose_secret(), "token-1");
    assert_eq!(minter.calls(), 1);

    clock.advance(Duration::from_secs(2)); // past 80 %: served at once, refreshed behind
    assert_eq!(cache.token().await.unwrap().expose_secret(), "token-1");
    tokio::time::timeout(Duration::from_secs(5), async {
        while cache.cached().unwrap().expose_secret() != "token-2" {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("background refresh lands");
    assert_eq!(cache.token().await.unwrap().expose_secret(), "token-2");
    assert_eq!(minter.calls(), 2);
}

#[tokio::test]
async fn a_failing_refresh_keeps_serving_the_valid_token() {
    let clock = ManualClock::new(at(START));
    let minter = Minter::new(&clock, Duration::from_secs(900), Duration::ZERO);
    let cache = cache(&minter, &clock);
    let first = cache.token().await.unwrap();

    minter.failing.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(800)); // past the refresh point, 100 s left
    for _ in 0..20 {
        assert_eq!(cache.token().await.unwrap(), first);
        tokio::task::yield_now().await;
    }
    // One failed background attempt, then none until retry_after_failure.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(cache.token().await.unwrap(), first);
    assert_eq!(minter.calls(), 2, "failed refreshes are not retried in a loop");

    // Within min_remaining of expiry the old token is no longer handed out.
    clock.advance(Duration::from_secs(80)); // 20 s left < 30 s
    let err = cache.token().await.unwrap_err();
    assert!(matches!(err, TokenError::Provider { .. }), "{err:?}");
}

#[tokio::test]
async fn never_returns_an_expired_token() {
    let clock = ManualClock::new(at(START));
    let minter = Minter::new(&clock, Duration::from_secs(4), Duration::ZERO);
    let cache = cache(&minter, &clock);
    for _ in 0..200 {
        let token = cache.token().await.unwrap();
        assert!(!token.is_expired(clock.now()), "{token:?} at {:?}", clock.now());
        assert!(token.remaining(clock.now()) >= Duration::from_secs(1));
        clock.advance(Duration::from_millis(250));
    }

    // An inner provider that returns an already expired token is refused too.
    let stale = dsql_auth::provider::from_fn(|| async {
        Ok::<_, TokenError>(AuthToken::new("old", at(START - 900), at(START - 1)))
    });
    let cache = CachingProvider::builder(stale)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    assert!(matches!(cache.token().await, Err(TokenError::Expired { .. })));
}

#[tokio::test]
async fn invalidate_drops_only_the_rejected_token() {
    let clock = ManualClock::new(at(START));
    let minter = Minter::new(&clock, Duration::from_secs(900), Duration::ZERO);
    let cache = cache(&minter, &clock);
    let first = cache.token().await.unwrap();

    // Many connections refused with the same token: one refresh.
    cache.invalidate(&first);
    let second = cache.token().await.unwrap();
    assert_ne!(first, second);
    for _ in 0..50 {
        cache.invalidate(&first);
        assert_eq!(cache.token().await.unwrap(), second);
    }
    assert_eq!(minter.calls(), 2);
    assert_eq!(
        minter.invalidated.load(Ordering::SeqCst),
        51,
        "passed to the inner provider"
    );
}

#[tokio::test]
async fn a_dropped_leader_does_not_strand_followers() {
    let clock = ManualClock::new(at(START));
    let minter = Minter::new(&clock, Duration::from_secs(900), Duration::from_millis(200));
    let cache = cache(&minter, &clock);

    let leader = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let follower = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    leader.abort();
    let token = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("the follower does not hang")
        .unwrap()
        .unwrap();
    assert_eq!(token.expose_secret(), "token-2");
}

#[test]
fn rejects_a_bad_refresh_fraction() {
    let clock = ManualClock::new(at(START));
    let minter = Minter::new(&clock, Duration::from_secs(900), Duration::ZERO);
    for fraction in [0.0, -0.5, 1.5, f64::NAN] {
        let err = CachingProvider::builder(minter.clone())
            .refresh_fraction(fraction)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("refresh_fraction"), "{err}");
    }
}

/// `retry_after_failure(Duration::MAX)` used to overflow `SystemTime` (a
/// panic) at the first call after a failed background refresh.
#[tokio::test]
async fn extreme_settings_do_not_overflow() {
    let clock = ManualClock::new(at(START));
    let minter = Minter::new(&clock, Duration::from_secs(900), Duration::ZERO);
    let cache = CachingProvider::builder(minter.clone())
        .min_remaining(Duration::MAX)
        .retry_after_failure(Duration::MAX)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let first = cache.token().await.unwrap();

    // min_remaining is capped at a quarter of the lifetime (225 s): served
    // until 675 s, refreshed from 450 s.
    minter.failing.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(500));
    assert_eq!(cache.token().await.unwrap(), first);
    tokio::time::timeout(Duration::from_secs(5), async {
        while minter.calls() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("a background refresh is attempted");
    tokio::time::sleep(Duration::from_millis(20)).await;
    for _ in 0..10 {
        assert_eq!(cache.token().await.unwrap(), first);
        tokio::task::yield_now().await;
    }
    assert_eq!(minter.calls(), 2, "no retry within retry_after_failure");

    // Past the usable window the caller waits for a fresh token.
    clock.advance(Duration::from_secs(200));
    assert!(matches!(cache.token().await, Err(TokenError::Provider { .. })));
    minter.failing.store(false, Ordering::SeqCst);
    assert_eq!(cache.token().await.unwrap().expose_secret(), "token-4");

    // A clock that goes back before the failure does not overflow either.
    clock.set(at(START));
    assert_eq!(cache.token().await.unwrap().expose_secret(), "token-4");
}

/// Tokens at the edges of `SystemTime`, from custom providers: deciding when
/// to refresh them must not overflow (a lifetime of almost 2^64 s used to
/// overflow `Duration::mul_f64`, a panic).
#[tokio::test]
async fn tokens_with_extreme_validity_windows() {
    let clock = ManualClock::new(at(START));
    // The widest window this platform's `SystemTime` can hold.
    let (far_past, far_future) = std::iter::successors(Some(i64::MAX as u64), |secs| Some(secs / 2))
        .find_map(|secs| {
            let span = Duration::from_secs(secs);
            Some((UNIX_EPOCH.checked_sub(span)?, UNIX_EPOCH.checked_add(span)?))
        })
        .unwrap();
    let extreme = dsql_auth::provider::from_fn(move || async move {
        Ok::<_, TokenError>(AuthToken::new("forever", far_past, far_future))
    });
    for fraction in [1.0, 0.999_999, 1e-9] {
        let cache = CachingProvider::builder(extreme.clone())
            .refresh_fraction(fraction)
            .min_remaining(Duration::MAX)
            .retry_after_failure(Duration::MAX)
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap();
        assert_eq!(cache.token().await.unwrap().expose_secret(), "forever");
        assert_eq!(cache.token().await.unwrap().expose_secret(), "forever");
    }
}
