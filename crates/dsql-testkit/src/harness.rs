//! A `dsql-local` over the real PostgreSQL with a client configuration and
//! tokens for it, and the tower stack on top.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dsql_auth::aws::Credentials;
use dsql_auth::{
    AuthToken, CachingProvider, DsqlConfig, SharedTokenProvider, SigningProvider, TokenError, TokenProvider,
    TokenScope,
};
use dsql_local::{DsqlLocal, LocalConfigBuilder};
use dsql_tower::connect::ConnectStack;
use dsql_tower::retry::RetryPolicy;
use dsql_tower::{ClassifyLayer, ClassifyService, Session};
use tower::ServiceBuilder;
use tower::retry::Retry;

/// A session over the harness' connect stack.
pub type TestSession = Session<ConnectStack<SharedTokenProvider>>;

/// The full stack: retries by class over classification over a session.
pub type Stack = Retry<RetryPolicy, ClassifyService<TestSession>>;

/// A token provider that counts the tokens asked of `P` (under a cache: the
/// tokens signed). It says what `P` signs for, and passes invalidations on.
#[derive(Clone)]
pub struct CountingProvider<P> {
    inner: P,
    count: Arc<AtomicUsize>,
}

impl<P> CountingProvider<P> {
    /// Counts the tokens asked of `inner`.
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            count: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The counter, shared with every clone.
    pub fn counter(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.count)
    }
}

impl<P> fmt::Debug for CountingProvider<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingProvider")
            .field("count", &self.count.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl<P: TokenProvider> TokenProvider for CountingProvider<P> {
    async fn token(&self) -> Result<AuthToken, TokenError> {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.inner.token().await
    }

    fn invalidate(&self, rejected: &AuthToken) {
        self.inner.invalidate(rejected);
    }

    fn scope(&self) -> Option<TokenScope> {
        self.inner.scope()
    }
}

/// A caching provider over a signer for `config` with `credentials`, and the
/// number of tokens signed so far (cache misses).
pub fn counting_signer(
    config: &DsqlConfig,
    credentials: Credentials,
) -> (
    CachingProvider<CountingProvider<SigningProvider>>,
    Arc<AtomicUsize>,
) {
    let signer = SigningProvider::builder(config)
        .credentials_provider(credentials)
        .build();
    let counting = CountingProvider::new(signer);
    let signed = counting.counter();
    (CachingProvider::new(counting), signed)
}

/// A `dsql-local` over 127.0.0.1:5432 with an endpoint of its own (so that no
/// other test shares its client-side connect rate limiter, which is per
/// endpoint), a client configuration for `admin`, and tokens for it.
pub struct Harness {
    /// The `dsql-local` under test.
    pub local: DsqlLocal,
    /// The client configuration: `admin` on `local`, with the harness'
    /// token duration and application name.
    pub config: DsqlConfig,
    /// A caching provider over a signer with `local`'s credentials.
    pub tokens: SharedTokenProvider,
    /// The `application_name` of every session (unique to this harness).
    pub application_name: String,
    /// Tokens signed so far (cache misses).
    pub signed: Arc<AtomicUsize>,
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("endpoint", &self.config.endpoint().host())
            .field("application_name", &self.application_name)
            .field("signed", &self.signed())
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// `dsql-local` as `configure` sets it up, and a client configuration
    /// with tokens valid for `token_duration`.
    pub async fn start(
        configure: impl FnOnce(LocalConfigBuilder) -> LocalConfigBuilder,
        token_duration: Duration,
    ) -> Self {
        // A cluster id is 26 characters.
        let id = format!("{:0>26}", format!("{}x{}", std::process::id(), crate::next()));
        let local = configure(DsqlLocal::builder().endpoint_host(format!("{id}.dsql.us-east-1.on.aws")))
            .start()
            .await
            .unwrap();
        let application_name = crate::unique("dsql_test");
        let config = local
            .client_config("admin")
            .unwrap()
            .to_builder()
            .token_duration(token_duration)
            .application_name(&application_name)
            .build()
            .unwrap();
        let (tokens, signed) = counting_signer(&config, local.credentials());
        Self {
            local,
            config,
            tokens: SharedTokenProvider::new(tokens),
            application_name,
            signed,
        }
    }

    /// A new session over the harness' configuration and tokens.
    pub fn session(&self) -> TestSession {
        Session::from_config(&self.config, self.tokens.clone()).unwrap()
    }

    /// Retry and classification over a new session.
    pub fn stack(&self) -> (Stack, TestSession) {
        let session = self.session();
        let stack = ServiceBuilder::new()
            .layer(RetryPolicy::for_operations().layer())
            .layer(ClassifyLayer::new())
            .service(session.clone());
        (stack, session)
    }

    /// Tokens signed so far (cache misses).
    pub fn signed(&self) -> usize {
        self.signed.load(Ordering::SeqCst)
    }
}
