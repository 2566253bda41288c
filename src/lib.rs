//! Examples, workspace integration tests and shared example support for the
//! `dsql-rs` crates. Nothing here is published; the libraries live in
//! `crates/`.
//!
//! [`Target::from_env_or_local`] is what every example starts with: the DSQL
//! cluster named by `CLUSTER_ENDPOINT` (with AWS credentials from the default
//! chain) when it is set, otherwise a `dsql-local` front end over the local
//! PostgreSQL, so the same code runs the real authentication flow either way.
#![forbid(unsafe_code)]

use dsql_auth::{CachingProvider, DsqlConfig, SharedTokenProvider, SigningProvider};
use std::time::Duration;

use dsql_local::{DsqlLocal, LocalConfigBuilder};

/// A boxed error for examples.
pub use dsql_tower::BoxError;

/// Where the examples connect, and how they get tokens.
#[derive(Debug)]
pub struct Target {
    /// The connection settings.
    pub config: DsqlConfig,
    /// Signing provider behind a cache.
    pub tokens: SharedTokenProvider,
    /// The local front end, when no cluster is configured.
    pub local: Option<DsqlLocal>,
}

impl Target {
    /// The cluster from `CLUSTER_ENDPOINT`, `REGION`, `CLUSTER_USER`, … or,
    /// when `CLUSTER_ENDPOINT` is unset, `dsql-local` over the PostgreSQL at
    /// `DSQL_LOCAL_UPSTREAM` (default `postgres://postgres@127.0.0.1:5432/postgres`),
    /// as user `admin`.
    pub async fn from_env_or_local() -> Result<Self, BoxError> {
        Self::from_env_or_local_with(|local| local, None).await
    }

    /// Like [`from_env_or_local`](Self::from_env_or_local), with the local
    /// front end set up by `configure` (to shorten DSQL's limits, say) and
    /// local tokens valid for `token_duration` (default 900 s). Neither
    /// applies to a real cluster.
    pub async fn from_env_or_local_with(
        configure: impl FnOnce(LocalConfigBuilder) -> LocalConfigBuilder,
        token_duration: Option<Duration>,
    ) -> Result<Self, BoxError> {
        if let Some(config) = DsqlConfig::cluster_from_env()? {
            let signer = SigningProvider::load(&config).await;
            return Ok(Self {
                tokens: SharedTokenProvider::new(CachingProvider::new(signer)),
                config,
                local: None,
            });
        }
        let mut builder = DsqlLocal::builder();
        if let Ok(upstream) = std::env::var("DSQL_LOCAL_UPSTREAM") {
            builder = builder.upstream(upstream);
        }
        let local = configure(builder).start().await?;
        let mut config = local.client_config("admin")?;
        if let Some(duration) = token_duration {
            config = config.to_builder().token_duration(duration).build()?;
        }
        let signer = SigningProvider::builder(&config)
            .credentials_provider(local.credentials())
            .build();
        Ok(Self {
            tokens: SharedTokenProvider::new(CachingProvider::new(signer)),
            config,
            local: Some(local),
        })
    }

    /// A one-line description for the examples' output.
    pub fn describe(&self) -> String {
        match &self.local {
            Some(local) => format!(
                "dsql-local at {} (endpoint {}) over local PostgreSQL",
                local.addr(),
                local.host()
            ),
            None => format!("DSQL cluster {}", self.config.endpoint()),
        }
    }

    /// Stops the local front end, if any.
    pub async fn shutdown(self) {
        if let Some(local) = self.local {
            local.shutdown().await;
        }
    }
}
