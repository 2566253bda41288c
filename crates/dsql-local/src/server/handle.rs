//! [`DsqlLocal`]: starts the server, tells clients how to connect (client
//! configuration, URL, libpq string, tokens), hands out the fault and stats
//! handles, and shuts down.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use aws_credential_types::Credentials;
use dsql_auth::clock::SharedClock;
use dsql_auth::{Action, DsqlConfig, Endpoint};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::{ServerCtx, accept_loop};
use crate::config::{AccessKey, LocalConfig, LocalConfigBuilder};
use crate::dialect::SqlRules;
use crate::error::StartError;
use crate::faults::Faults;
use crate::limits::{ConnectionLimit, RateLimiter};
use crate::network::DelayLine;
use crate::protocol::MemoryBudget;
use crate::registry::Registry;
use crate::stats::Stats;
use crate::tls;
use crate::token::{SignError, TokenRequest, Verifier, sign_token};
use crate::upstream::Roles;

/// A running DSQL-compatible endpoint.
///
/// Dropping it stops the server too, without waiting; prefer
/// [`shutdown`](Self::shutdown), which waits until every connection is
/// closed and every task has ended.
pub struct DsqlLocal {
    addr: SocketAddr,
    endpoint: Endpoint,
    ca_pem: String,
    ca_path: PathBuf,
    temp_dir: Option<PathBuf>,
    key: AccessKey,
    clock: SharedClock,
    stats: Stats,
    faults: Faults,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl DsqlLocal {
    /// A builder with DSQL's defaults; finish with
    /// [`start`](LocalConfigBuilder::start).
    pub fn builder() -> LocalConfigBuilder {
        LocalConfig::builder()
    }

    /// Generates the certificates, binds the listener and starts accepting.
    pub async fn start(config: LocalConfig) -> Result<Self, StartError> {
        Self::start_with_ca(config, None).await
    }

    /// [`start`](Self::start), with the server certificate signed by `ca`
    /// when given (a CA shared with other endpoints, which owns its
    /// temporary directory) rather than by a CA of its own.
    pub(crate) async fn start_with_ca(config: LocalConfig, ca: Option<&tls::Ca>) -> Result<Self, StartError> {
        let material = tls::build(&config, ca)?;
        let listener = match TcpListener::bind(config.listen).await {
            Ok(listener) => listener,
            Err(source) => {
                remove_dir(material.temp_dir.as_deref());
                return Err(StartError::Bind {
                    addr: config.listen,
                    source,
                });
            }
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(source) => {
                remove_dir(material.temp_dir.as_deref());
                return Err(StartError::Bind {
                    addr: config.listen,
                    source,
                });
            }
        };
        let registry = Arc::new(Registry::default());
        let stats = Stats::new();
        let faults = Faults::new(Arc::clone(&registry), stats.clone());
        let key = config
            .access_keys
            .first()
            .cloned()
            .unwrap_or_else(AccessKey::default_test_key);
        let endpoint = config.endpoint.clone();
        let clock = Arc::clone(&config.clock);
        let network = match config.network_round_trip {
            Some(round_trip) => match DelayLine::new(round_trip, Arc::clone(&stats.counters)) {
                Ok(line) => Some(line),
                Err(source) => {
                    remove_dir(material.temp_dir.as_deref());
                    return Err(StartError::DelayLine(source));
                }
            },
            None => None,
        };
        let ctx = Arc::new(ServerCtx {
            network,
            verifier: Verifier::new(
                config.endpoint.clone(),
                &config.access_keys,
                config.allow_unknown_access_keys,
                Arc::clone(&config.clock),
            ),
            tls: material.acceptor,
            stats: stats.clone(),
            faults: faults.clone(),
            registry,
            roles: Roles::default(),
            connections: ConnectionLimit::new(config.max_connections),
            handshakes: ConnectionLimit::new(config.bounds.max_pending_handshakes),
            memory: MemoryBudget::new(config.bounds.max_buffered_bytes),
            sql_rules: SqlRules::default(),
            rate: config.connection_rate.map(RateLimiter::new),
            next_connection: AtomicU64::new(0),
            config,
        });
        ctx.roles.prepare_at_start(&ctx.config).await;
        if let Err(error) = crate::upstream::emulation::install(&ctx.config).await {
            tracing::warn!(
                %error,
                "could not install DSQL's emulation upstream (it needs a superuser): the \
                 3,000-row cap per transaction and asynchronous DDL do not work"
            );
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let span = tracing::info_span!(
            "dsql_local",
            %addr,
            endpoint = endpoint.host(),
            region = endpoint.region(),
        );
        span.in_scope(|| {
            tracing::info!(
                upstream = %ctx.config.upstream(),
                ca = %material.ca_path.display(),
                "dsql-local listening"
            );
            if ctx.config.public_key_off_loopback {
                tracing::warn!(
                    %addr,
                    "the public test key (or unknown access keys) is accepted on a non-loopback \
                     address: anyone who reaches it can sign tokens and use the upstream database"
                );
            }
        });
        let task = tokio::spawn(accept_loop(listener, ctx, shutdown_rx).instrument(span));
        Ok(Self {
            addr,
            endpoint,
            ca_pem: material.ca_pem,
            ca_path: material.ca_path,
            temp_dir: material.temp_dir,
            key,
            clock,
            stats,
            faults,
            shutdown,
            task: Some(task),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The endpoint: its host name (for tokens, SNI and certificate checks)
    /// and region.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The endpoint host name.
    pub fn host(&self) -> &str {
        self.endpoint.host()
    }

    /// The CA certificate, PEM-encoded.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The file holding [`ca_pem`](Self::ca_pem), for `sslrootcert`.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The access key tokens can be signed with (the first configured one;
    /// by default the built-in test key).
    pub fn access_key(&self) -> &AccessKey {
        &self.key
    }

    /// [`access_key`](Self::access_key) as AWS credentials, to sign tokens
    /// with `dsql_auth::SigningProvider`.
    pub fn credentials(&self) -> Credentials {
        self.key.credentials()
    }

    /// A client configuration for `user`: host = the endpoint name, hostaddr =
    /// the listening address, port = the bound port, sslrootcert = the CA
    /// file, region = the endpoint's.
    pub fn client_config(&self, user: &str) -> Result<DsqlConfig, dsql_auth::ConfigError> {
        DsqlConfig::builder()
            .endpoint(self.endpoint.clone())
            .user(user)
            .port(self.addr.port())
            .hostaddr(self.addr.ip())
            .ssl_root_cert(&self.ca_path)
            .build()
    }

    /// A token for `user`, signed now (by the configured clock) with
    /// [`access_key`](Self::access_key) and valid for 900 s: a password for
    /// `psql` and other tools. Applications should sign their own tokens
    /// (`dsql_auth::SigningProvider` with [`credentials`](Self::credentials)).
    pub fn token(&self, user: &str) -> Result<String, SignError> {
        let mut request = TokenRequest::new(
            self.endpoint.host(),
            self.endpoint.region(),
            Action::for_user(user),
            &self.key,
        );
        request.signed_at = self.clock.now();
        sign_token(&request)
    }

    /// A libpq connection string for `user` (without password): `host`,
    /// `hostaddr`, `port`, `user`, `dbname=postgres`, `sslmode=verify-full`
    /// and `sslrootcert`. Pass a [`token`](Self::token) as `PGPASSWORD`.
    pub fn libpq_conninfo(&self, user: &str) -> String {
        fn quote(value: &str) -> String {
            format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
        }
        format!(
            "host={} hostaddr={} port={} user={} dbname=postgres sslmode=verify-full sslrootcert={}",
            quote(self.endpoint.host()),
            self.addr.ip(),
            self.addr.port(),
            quote(user),
            quote(&self.ca_path.to_string_lossy()),
        )
    }

    /// A connection URL for `user` that `dsql_auth::DsqlConfig::from_url`
    /// accepts and that describes the same connection as
    /// [`client_config`](Self::client_config):
    /// `postgres://<user>@<endpoint>:<port>/postgres?hostaddr=…&sslrootcert=…&region=…`.
    /// Handy as an environment variable for tests in another process.
    pub fn connection_url(&self, user: &str) -> String {
        let base = format!(
            "postgres://{}:{}/postgres",
            self.endpoint.host(),
            self.addr.port()
        );
        let Ok(mut url) = url::Url::parse(&base) else {
            // The endpoint host is a valid host name (checked by `Endpoint`).
            return base;
        };
        let _ = url.set_username(user);
        url.query_pairs_mut()
            .append_pair("hostaddr", &self.addr.ip().to_string())
            .append_pair("sslrootcert", &self.ca_path.to_string_lossy())
            .append_pair("region", self.endpoint.region());
        url.into()
    }

    /// The fault handle.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// Stops accepting, closes every connection and waits until every task
    /// has ended.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DsqlLocal {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        remove_dir(self.temp_dir.as_deref());
    }
}

impl fmt::Debug for DsqlLocal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsqlLocal")
            .field("addr", &self.addr)
            .field("endpoint", &self.endpoint.host())
            .field("region", &self.endpoint.region())
            .field("ca_path", &self.ca_path)
            .field("access_key_id", &self.key.access_key_id())
            .finish_non_exhaustive()
    }
}

fn remove_dir(dir: Option<&Path>) {
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}
