//! Amazon Aurora DSQL endpoints, configuration and IAM authentication tokens.
//!
//! DSQL has no passwords: a client signs a short-lived token (a SigV4
//! presigned URL) with its AWS credentials and sends it as the PostgreSQL
//! password. This crate turns a configuration into such tokens, at the right
//! moment, without ever printing one:
//!
//! - [`Endpoint`] parses and validates host names, cluster ids and regions;
//! - [`DsqlConfig`] holds a connection's settings, from a builder, the
//!   environment ([`DsqlConfig::from_env`]) or a URL;
//! - [`ClusterSet`] holds a multi-region cluster's endpoints, the local one
//!   first, each a complete [`DsqlConfig`] (so each gets its own token
//!   provider), from a builder, the environment or a multi-host URL;
//! - [`AuthToken`] is a token with its validity window; `Debug` and `Display`
//!   redact it;
//! - [`TokenProvider`] is anything that produces tokens: [`SigningProvider`]
//!   (feature `aws`, on by default) signs them, [`CachingProvider`] reuses and
//!   refreshes them ahead of expiry, [`StaticProvider`] returns a fixed one,
//!   and [`provider::from_fn`] adapts a closure. [`SharedTokenProvider`] is the
//!   type-erased form;
//! - [`TokenScope`] names the (endpoint host, user) a token is bound to;
//! - [`semconv`] names every metric, span and attribute of the dsql-rs
//!   crates (OpenTelemetry's semantic conventions, and DSQL's own under
//!   `dsql.`). With the `metrics` feature (off by default) signings
//!   (`dsql.auth.token.signings`) and cache refreshes
//!   (`dsql.auth.token.refreshes`) are counted through the `metrics`
//!   facade, failures with their kind (`error.type`), never a token.
//!
//! ```
//! use aws_credential_types::Credentials;
//! use dsql_auth::{CachingProvider, DsqlConfig, SigningProvider, TokenProvider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = DsqlConfig::builder()
//!     .host("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws")
//!     .user("admin")
//!     .build()?;
//! let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", None, None, "example");
//! let tokens = CachingProvider::new(
//!     SigningProvider::builder(&config).credentials_provider(credentials).build(),
//! );
//! let token = tokens.token().await?;
//! // Send `token.expose_secret()` as the password; never log it.
//! println!("{token:?}"); // AuthToken { secret: "<redacted>", … }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod clock;
mod config;
mod endpoint;
pub mod limits;
#[cfg(feature = "metrics")]
mod metrics;
pub mod provider;
mod scope;
pub mod semconv;
#[cfg(feature = "aws")]
mod signing;
mod token;

pub use config::{
    ClusterSet, ConfigError, DEFAULT_DATABASE, DEFAULT_PORT, DEFAULT_USER, DsqlConfig, DsqlConfigBuilder,
    SslNegotiation,
};
pub use endpoint::{CLUSTER_ID_LEN, Endpoint, EndpointError, EndpointKind};
pub use provider::{CachingProvider, SharedTokenProvider, StaticProvider, TokenError, TokenProvider};
pub use scope::TokenScope;
#[cfg(feature = "aws")]
pub use signing::{SigningProvider, SigningProviderBuilder};
pub use token::{
    Action, AuthToken, DEFAULT_TOKEN_DURATION, MAX_TOKEN_DURATION, TokenClaims, TokenParseError,
};

/// Re-exports of the AWS types that appear in this crate's API.
#[cfg(feature = "aws")]
pub mod aws {
    pub use aws_config::SdkConfig;
    pub use aws_credential_types::Credentials;
    pub use aws_credential_types::provider::ProvideCredentials;
}
