//! [`Target`]: a real DSQL cluster when one is configured, otherwise a
//! `dsql-local` over the local PostgreSQL, with tokens for either: the same
//! code runs the real authentication flow in both.

use std::time::Duration;

use dsql_auth::{CachingProvider, DsqlConfig, SharedTokenProvider, SigningProvider};

use crate::{DsqlLocal, LocalConfigBuilder};

/// The error of [`Target::from_env_or_local`]: a configuration, a start or
/// a signing error.
pub type TargetError = Box<dyn std::error::Error + Send + Sync>;

/// Where a program, a test or an example connects, and how it gets tokens.
///
/// ```no_run
/// use dsql_local::Target;
///
/// # async fn example() -> Result<(), dsql_local::TargetError> {
/// // The cluster in CLUSTER_ENDPOINT (credentials from the default chain),
/// // or dsql-local over DSQL_LOCAL_UPSTREAM / the local PostgreSQL.
/// let target = Target::from_env_or_local().await?;
/// println!("connecting to {}", target.describe());
/// // Build a pool with `&target.config` and `target.tokens.clone()`.
/// target.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Target {
    /// The connection settings.
    pub config: DsqlConfig,
    /// A signing provider behind a cache.
    pub tokens: SharedTokenProvider,
    /// The local front end, when no cluster is configured.
    pub local: Option<DsqlLocal>,
}

impl Target {
    /// The cluster from `CLUSTER_ENDPOINT`, `REGION`, `CLUSTER_USER`, … or,
    /// when `CLUSTER_ENDPOINT` is unset, `dsql-local` over the PostgreSQL at
    /// `DSQL_LOCAL_UPSTREAM` (default `postgres://postgres@127.0.0.1:5432/postgres`),
    /// as user `admin`.
    pub async fn from_env_or_local() -> Result<Self, TargetError> {
        Self::from_env_or_local_with(|local| local, None).await
    }

    /// Like [`from_env_or_local`](Self::from_env_or_local), with the local
    /// front end set up by `configure` (to shorten DSQL's limits, say) and
    /// local tokens valid for `token_duration` (default 900 s). Neither
    /// applies to a real cluster.
    pub async fn from_env_or_local_with(
        configure: impl FnOnce(LocalConfigBuilder) -> LocalConfigBuilder,
        token_duration: Option<Duration>,
    ) -> Result<Self, TargetError> {
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

    /// A one-line description, for a program's output.
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
