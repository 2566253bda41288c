//! Examples, workspace integration tests and shared example support for the
//! `dsql-rs` crates. Nothing here is published; the libraries live in
//! `crates/`.
//!
//! [`Target::from_env_or_local`] is what every example starts with: the DSQL
//! cluster named by `CLUSTER_ENDPOINT` (with AWS credentials from the default
//! chain) when it is set, otherwise a `dsql-local` front end over the local
//! PostgreSQL, so the same code runs the real authentication flow either way.
//! Each first calls [`init_tracing`], so `RUST_LOG` shows the libraries'
//! spans and events.
#![forbid(unsafe_code)]

use dsql_auth::{CachingProvider, DsqlConfig, SharedTokenProvider, SigningProvider};
use std::time::Duration;

use dsql_local::{DsqlLocal, LocalConfigBuilder};

/// A boxed error for examples.
pub use dsql_tower::BoxError;

/// Prints the events `RUST_LOG` asks for to stderr (`warn` and above when
/// it is unset), each with the spans it happened in: `RUST_LOG=dsql_tower=debug`
/// shows every retry inside its `dsql.operation` span, with the span's
/// OpenTelemetry attributes (`db.system.name`, `server.address`, …), never a
/// token or a query parameter.
///
/// To export the spans to an OpenTelemetry backend instead, add
/// `tracing-opentelemetry`'s layer to a `tracing_subscriber::registry()`:
/// `dsql.operation` and `dsql.connect` carry `otel.kind = "client"`, so they
/// show as database client spans.
///
/// Calling it again, or after another subscriber was installed, does
/// nothing.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::filter::LevelFilter;

    // Invalid directives are reported on stderr and skipped, not fatal.
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    let _already_set = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

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
