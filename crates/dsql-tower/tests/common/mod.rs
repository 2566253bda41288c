//! A `dsql-local` front end over the real PostgreSQL, and the tower stack
//! under test, for the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dsql_auth::{CachingProvider, DsqlConfig, SharedTokenProvider, SigningProvider, TokenProvider, provider};
use dsql_local::{DsqlLocal, LocalConfigBuilder};
use dsql_tower::connect::ConnectStack;
use dsql_tower::retry::RetryPolicy;
use dsql_tower::{ClassifyLayer, ClassifyService, Session};
use tower::ServiceBuilder;
use tower::retry::Retry;

/// The full stack: retries by class over classification over a session.
pub type Stack = Retry<RetryPolicy, ClassifyService<Session<ConnectStack<SharedTokenProvider>>>>;

pub struct Harness {
    pub local: DsqlLocal,
    pub config: DsqlConfig,
    pub tokens: SharedTokenProvider,
    /// Tokens signed so far (cache misses).
    pub signed: Arc<AtomicUsize>,
}

impl Harness {
    /// `dsql-local` over 127.0.0.1:5432 as `configure` sets it up, and a
    /// client configuration with tokens valid for `token_duration`.
    pub async fn start(
        configure: impl FnOnce(LocalConfigBuilder) -> LocalConfigBuilder,
        token_duration: Duration,
    ) -> Self {
        let local = configure(DsqlLocal::builder()).start().await.unwrap();
        let config = local
            .client_config("admin")
            .unwrap()
            .to_builder()
            .token_duration(token_duration)
            .application_name(format!("dsql-tower-test-{}", std::process::id()))
            .build()
            .unwrap();
        let signer = SigningProvider::builder(&config)
            .credentials_provider(local.credentials())
            .build();
        let signed = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&signed);
        let counting = provider::from_fn(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let signer = signer.clone();
            async move { signer.token().await }
        });
        let tokens = SharedTokenProvider::new(CachingProvider::new(counting));
        Self {
            local,
            config,
            tokens,
            signed,
        }
    }

    pub fn session(&self) -> Session<ConnectStack<SharedTokenProvider>> {
        Session::from_config(&self.config, self.tokens.clone()).unwrap()
    }

    /// Retry and classification over a new session.
    pub fn stack(&self) -> (Stack, Session<ConnectStack<SharedTokenProvider>>) {
        let session = self.session();
        let stack = ServiceBuilder::new()
            .layer(RetryPolicy::for_operations().layer())
            .layer(ClassifyLayer::new())
            .service(session.clone());
        (stack, session)
    }

    pub fn signed(&self) -> usize {
        self.signed.load(Ordering::SeqCst)
    }
}

/// A plain connection to the PostgreSQL behind `dsql-local`, to check what
/// really landed.
pub async fn direct() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

/// A table name no other test (or test binary) uses.
pub fn table(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "tower_{name}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}
