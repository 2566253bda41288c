use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::clock::{self, SharedClock};
use crate::{AuthToken, TokenError, TokenProvider, TokenScope};

mod builder;

pub use self::builder::{CachingProviderBuilder, InvalidCacheSettings};

const DEFAULT_REFRESH_FRACTION: f64 = 0.8;
const DEFAULT_MIN_REMAINING: Duration = Duration::from_secs(30);
const DEFAULT_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Caches the token of any provider and refreshes it ahead of expiry.
///
/// - A token is reused until a configurable fraction of its lifetime
///   (default 80 %) has passed; then the next caller starts a refresh in the
///   background and keeps getting the current token, so past the refresh
///   point no caller waits.
/// - A token is handed out only while at least `min_remaining` (default 30 s,
///   at most a quarter of its lifetime for short tokens) is left; after that
///   callers wait for a fresh one. An expired token is never returned.
/// - Refreshes are single-flight: however many callers arrive at once, the
///   inner provider is called once.
/// - A failing background refresh is logged and retried after
///   `retry_after_failure`, while the current token keeps being served.
/// - [`TokenProvider::invalidate`] drops the cached token if it is still the
///   one the server rejected.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use dsql_auth::{provider, AuthToken, CachingProvider, TokenError, TokenProvider};
///
/// let signer = provider::from_fn(|| async {
///     let now = SystemTime::now();
///     Ok::<_, TokenError>(AuthToken::new("fresh", now, now + Duration::from_secs(900)))
/// });
/// let cached = CachingProvider::builder(signer)
///     .refresh_fraction(0.5)
///     .min_remaining(Duration::from_secs(15))
///     .build()?;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let first = cached.token().await.unwrap();
/// let second = cached.token().await.unwrap();
/// assert_eq!(first, second); // served from the cache
/// # });
/// # Ok::<(), dsql_auth::provider::InvalidCacheSettings>(())
/// ```
pub struct CachingProvider<P> {
    shared: Arc<Shared<P>>,
}

struct Shared<P> {
    inner: P,
    settings: Settings,
    clock: SharedClock,
    state: Mutex<State>,
}

#[derive(Clone, Copy, Debug)]
struct Settings {
    refresh_fraction: f64,
    min_remaining: Duration,
    retry_after_failure: Duration,
}

type RefreshResult = Option<Result<AuthToken, TokenError>>;

#[derive(Default)]
struct State {
    token: Option<AuthToken>,
    in_flight: Option<watch::Receiver<RefreshResult>>,
    last_failure: Option<SystemTime>,
}

enum Next {
    Lead(watch::Sender<RefreshResult>),
    Follow(watch::Receiver<RefreshResult>),
}

/// What the cache can do for a caller right now.
enum Decision {
    Serve(AuthToken),
    ServeAndRefresh(AuthToken),
    Wait,
}

impl<P> Clone for CachingProvider<P> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<P: TokenProvider + 'static> CachingProvider<P> {
    /// Caches `inner` with the default settings.
    pub fn new(inner: P) -> Self {
        Self::from_parts(
            inner,
            Settings {
                refresh_fraction: DEFAULT_REFRESH_FRACTION,
                min_remaining: DEFAULT_MIN_REMAINING,
                retry_after_failure: DEFAULT_RETRY_AFTER_FAILURE,
            },
            clock::system(),
        )
    }

    /// A builder to tune refresh timing and the clock.
    pub fn builder(inner: P) -> CachingProviderBuilder<P> {
        CachingProviderBuilder::new(inner)
    }

    fn from_parts(inner: P, settings: Settings, clock: SharedClock) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner,
                settings,
                clock,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The wrapped provider.
    pub fn get_ref(&self) -> &P {
        &self.shared.inner
    }

    /// The token currently cached, if any, whatever its age.
    pub fn cached(&self) -> Option<AuthToken> {
        self.shared.lock().token.clone()
    }

    async fn token_inner(&self) -> Result<AuthToken, TokenError> {
        loop {
            let next = {
                let mut state = self.shared.lock();
                match self.shared.decide(&state) {
                    Decision::Serve(token) => return Ok(token),
                    Decision::ServeAndRefresh(token) => {
                        self.refresh_in_background(&mut state);
                        return Ok(token);
                    }
                    Decision::Wait => match &state.in_flight {
                        Some(receiver) => Next::Follow(receiver.clone()),
                        None => {
                            let (sender, receiver) = watch::channel(None);
                            state.in_flight = Some(receiver);
                            Next::Lead(sender)
                        }
                    },
                }
            };
            let mut receiver = match next {
                // This caller leads the refresh; if it is dropped midway,
                // `sender` is dropped too and the followers loop and elect a
                // new leader.
                Next::Lead(sender) => return Shared::refresh(&self.shared, sender).await,
                Next::Follow(receiver) => receiver,
            };
            let outcome = receiver
                .wait_for(Option::is_some)
                .await
                .map(|result| result.clone());
            match outcome {
                Ok(Some(result)) => return self.shared.check_fresh(result),
                Ok(None) => {}
                Err(_leader_dropped) => {
                    let mut state = self.shared.lock();
                    if state
                        .in_flight
                        .as_ref()
                        .is_some_and(|r| r.same_channel(&receiver))
                    {
                        state.in_flight = None;
                    }
                }
            }
        }
    }

    fn refresh_in_background(&self, state: &mut State) {
        if state.in_flight.is_some() {
            return;
        }
        // Without a Tokio runtime nothing can run in the background; callers
        // then refresh in the foreground once the token stops being usable.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (sender, receiver) = watch::channel(None);
        state.in_flight = Some(receiver);
        let shared = Arc::clone(&self.shared);
        runtime.spawn(async move {
            let _ = Shared::refresh(&shared, sender).await;
        });
    }
}

impl<P: TokenProvider> Shared<P> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn decide(&self, state: &State) -> Decision {
        let Some(token) = &state.token else {
            return Decision::Wait;
        };
        let now = self.clock.now();
        let lifetime = token.lifetime();
        // Every instant below lies within [issued_at, expires_at], so none of
        // this arithmetic can overflow, whatever the settings.
        let margin = self.settings.min_remaining.min(lifetime / 4);
        let usable_until = token
            .expires_at()
            .checked_sub(margin)
            .unwrap_or_else(|| token.issued_at());
        if now >= usable_until {
            return Decision::Wait;
        }
        let refresh_after =
            Duration::try_from_secs_f64(lifetime.as_secs_f64() * self.settings.refresh_fraction)
                .unwrap_or(lifetime)
                .min(lifetime);
        let refresh_at = token
            .issued_at()
            .checked_add(refresh_after)
            .unwrap_or(usable_until)
            .min(
                usable_until
                    .checked_sub(margin)
                    .unwrap_or_else(|| token.issued_at()),
            );
        let recently_failed = state.last_failure.is_some_and(|at| match now.duration_since(at) {
            Ok(since) => since < self.settings.retry_after_failure,
            // The clock went back past the failure: still recent.
            Err(_) => true,
        });
        if now < refresh_at || recently_failed {
            Decision::Serve(token.clone())
        } else {
            Decision::ServeAndRefresh(token.clone())
        }
    }

    async fn refresh(
        shared: &Arc<Self>,
        sender: watch::Sender<RefreshResult>,
    ) -> Result<AuthToken, TokenError> {
        let result = shared.inner.token().await;
        let result = result.and_then(|token| shared.check_fresh(Ok(token)));
        #[cfg(feature = "metrics")]
        crate::metrics::token_refreshed(shared.inner.scope().as_ref().map(TokenScope::host), &result);
        {
            let mut state = shared.lock();
            state.in_flight = None;
            match &result {
                Ok(token) => {
                    state.token = Some(token.clone());
                    state.last_failure = None;
                }
                Err(error) => {
                    state.last_failure = Some(shared.clock.now());
                    tracing::warn!(%error, "DSQL token refresh failed");
                }
            }
        }
        sender.send_replace(Some(result.clone()));
        result
    }

    /// The last line of defence: never hand out an expired token, even one
    /// the inner provider just produced.
    fn check_fresh(&self, result: Result<AuthToken, TokenError>) -> Result<AuthToken, TokenError> {
        let token = result?;
        if token.is_expired(self.clock.now()) {
            return Err(TokenError::Expired {
                expired_at: token.expires_at(),
            });
        }
        Ok(token)
    }
}

impl<P: TokenProvider + 'static> TokenProvider for CachingProvider<P> {
    fn token(&self) -> impl Future<Output = Result<AuthToken, TokenError>> + Send {
        self.token_inner()
    }

    fn invalidate(&self, rejected: &AuthToken) {
        {
            let mut state = self.shared.lock();
            if state.token.as_ref().is_some_and(|t| t.same_secret(rejected)) {
                state.token = None;
                tracing::debug!("cached DSQL token invalidated after a refusal");
            }
        }
        self.shared.inner.invalidate(rejected);
    }

    fn scope(&self) -> Option<TokenScope> {
        self.shared.inner.scope()
    }
}

impl<P: fmt::Debug> fmt::Debug for CachingProvider<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("CachingProvider")
            .field("inner", &self.shared.inner)
            .field("refresh_fraction", &self.shared.settings.refresh_fraction)
            .field("min_remaining", &self.shared.settings.min_remaining)
            .field("cached", &state.token)
            .field("refreshing", &state.in_flight.is_some())
            .finish()
    }
}
