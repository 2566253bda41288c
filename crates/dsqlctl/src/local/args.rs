//! The flags of `dsqlctl local` and the [`LocalConfig`] they make.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use dsql_local::{
    AccessKey, DEFAULT_CONNECTION_BURST, DEFAULT_CONNECTION_RATE, DEFAULT_UPSTREAM, DsqlLocal, LocalConfig,
    RateLimit,
};

use crate::{Failure, duration};

/// Options of `dsqlctl local`; every limit defaults to DSQL's.
#[derive(Debug, Args)]
pub(crate) struct LocalArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:15432")]
    listen: SocketAddr,
    #[arg(
        long,
        value_name = "URL",
        default_value = DEFAULT_UPSTREAM,
        help = "Upstream PostgreSQL: postgres://user[:password]@host[:port]/database \
                (trust, scram-sha-256, md5 or password authentication)"
    )]
    upstream: String,
    #[arg(
        long,
        value_name = "HOST",
        help = "Endpoint host name, for tokens, SNI and the certificate \
                [default: dsqllocal00000000000000000.dsql.<region>.on.aws]"
    )]
    endpoint_host: Option<String>,
    /// Region tokens must be signed for [default: the endpoint host's, or us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// Access key id tokens must be signed with, instead of the public test
    /// key AKIDLOCAL (with --secret-access-key).
    #[arg(long, value_name = "ID")]
    access_key_id: Option<String>,
    /// Secret of --access-key-id.
    #[arg(
        long,
        value_name = "SECRET",
        env = "DSQL_LOCAL_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    secret_access_key: Option<String>,
    /// Session lifetime, then the server closes the session [default: 60m].
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_positive)]
    session_lifetime: Option<Duration>,
    /// Longest open transaction, then it is rolled back [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_positive)]
    transaction_timeout: Option<Duration>,
    /// Most open connections; more are refused with 53300 [default: 10000].
    #[arg(long, value_name = "N", value_parser = at_least_one::<u64>)]
    max_connections: Option<u64>,
    /// New connections per second (token bucket refill); more are refused
    /// with 53400 [default: 100].
    #[arg(long, value_name = "PER_SEC", value_parser = positive_number)]
    connection_rate: Option<f64>,
    /// Largest burst of new connections [default: 1000].
    #[arg(long, value_name = "N", value_parser = at_least_one::<u32>)]
    connection_burst: Option<u32>,
    /// Keep the CA (ca.pem, ca-key.pem) in this directory, so that
    /// sslrootcert stays valid across restarts [default: a temporary CA].
    #[arg(long, value_name = "DIR")]
    pub(super) ca_dir: Option<PathBuf>,
    /// Fault: refuse every authentication for this long after start.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_positive)]
    pub(super) refuse_auth_for: Option<Duration>,
    /// Fault: fail each COMMIT with 40001 (OC000) with this probability (0 to 1).
    #[arg(long, value_name = "P", value_parser = probability)]
    pub(super) commit_conflict_probability: Option<f64>,
    /// Fault: delay each query (a Query or Sync message) by this much.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    pub(super) latency: Option<Duration>,
    /// Fault: close every open session periodically, with this period (at
    /// most a year).
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_period)]
    pub(super) drop_sessions_every: Option<Duration>,
    /// How often the counters are logged (info level, on stderr; also at
    /// exit); at most a year.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse_period)]
    pub(super) stats_every: Duration,
}

fn positive_number(input: &str) -> Result<f64, String> {
    match input.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!("`{input}` is not a positive number")),
    }
}

fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(input: &str) -> Result<T, String> {
    match input.trim().parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err(format!("`{input}` is not a whole number of at least 1")),
    }
}

fn probability(input: &str) -> Result<f64, String> {
    match input.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{input}` is not a probability between 0 and 1")),
    }
}

impl LocalArgs {
    /// The key tokens are signed with, if not the built-in test key.
    pub(super) fn access_key(&self) -> Result<Option<AccessKey>, Failure> {
        match (&self.access_key_id, &self.secret_access_key) {
            (None, None) => Ok(None),
            (Some(id), Some(secret)) => Ok(Some(AccessKey::new(id, secret))),
            (Some(_), None) => Err(Failure::Usage(
                "--access-key-id needs --secret-access-key (or DSQL_LOCAL_SECRET_ACCESS_KEY)".to_owned(),
            )),
            (None, Some(_)) => Err(Failure::Usage(
                "--secret-access-key (or DSQL_LOCAL_SECRET_ACCESS_KEY) needs --access-key-id".to_owned(),
            )),
        }
    }

    pub(super) fn config(&self, key: Option<AccessKey>) -> Result<LocalConfig, Failure> {
        let mut builder = DsqlLocal::builder().listen(self.listen).upstream(&self.upstream);
        if let Some(host) = &self.endpoint_host {
            builder = builder.endpoint_host(host);
        }
        if let Some(region) = &self.region {
            builder = builder.region(region);
        }
        if let Some(key) = key {
            builder = builder.without_default_key().access_key(key);
        }
        if let Some(lifetime) = self.session_lifetime {
            builder = builder.session_lifetime(lifetime);
        }
        if let Some(timeout) = self.transaction_timeout {
            builder = builder.transaction_timeout(timeout);
        }
        if let Some(max) = self.max_connections {
            builder = builder.max_connections(usize::try_from(max).unwrap_or(usize::MAX));
        }
        if self.connection_rate.is_some() || self.connection_burst.is_some() {
            builder = builder.connection_rate(RateLimit::new(
                self.connection_rate.unwrap_or(DEFAULT_CONNECTION_RATE),
                self.connection_burst.unwrap_or(DEFAULT_CONNECTION_BURST),
            ));
        }
        if let Some(dir) = &self.ca_dir {
            builder = builder.ca_dir(dir);
        }
        builder.build().map_err(|e| Failure::Usage(e.to_string()))
    }
}
