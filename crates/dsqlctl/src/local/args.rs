//! The flags of `dsqlctl local` and the [`LocalConfig`] they make.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use dsql_local::{
    AccessKey, DEFAULT_CONNECTION_BURST, DEFAULT_CONNECTION_RATE, DEFAULT_UPSTREAM, DsqlLocal, LocalConfig,
    LocalConfigBuilder, RateLimit, RegionsBuilder,
};

use crate::{Failure, duration};

/// Options of `dsqlctl local`; every limit defaults to DSQL's. `Debug`
/// redacts the secret access key.
#[derive(Args)]
pub(crate) struct LocalArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:15432")]
    listen: SocketAddr,
    #[arg(
        long,
        value_name = "URL",
        default_value = DEFAULT_UPSTREAM,
        help = "Upstream PostgreSQL: postgres://user[:password]@host[:port]/database \
                (a Unix-domain socket: postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres; \
                trust, scram-sha-256, md5 or password authentication; \
                ?require_auth=scram-sha-256 refuses weaker methods, and with a password \
                cleartext is refused unless require_auth=password)"
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
    /// Serve a multi-region cluster: one endpoint per region (comma-separated,
    /// the local one first), each with its own cluster id, endpoint host,
    /// signing region and port (--listen's, then one up per region), over
    /// one database and one CA.
    #[arg(
        long,
        value_name = "REGION,REGION",
        value_delimiter = ',',
        conflicts_with_all = ["endpoint_host", "region"]
    )]
    pub(super) regions: Vec<String>,
    /// Access key id tokens must be signed with, instead of the public test
    /// key AKIDLOCAL (with --secret-access-key).
    #[arg(long, value_name = "ID")]
    access_key_id: Option<String>,
    /// Secret of --access-key-id. A command line is visible to other users
    /// of the machine (ps, /proc): prefer the environment variable
    /// DSQL_LOCAL_SECRET_ACCESS_KEY.
    #[arg(
        long,
        value_name = "SECRET",
        env = "DSQL_LOCAL_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    secret_access_key: Option<String>,
    /// Accept the public test key even when --listen is not a loopback
    /// address: anyone who reaches the port can then sign tokens and use the
    /// upstream database. Without it, dsqlctl local refuses to start there
    /// unless --access-key-id is given.
    #[arg(long)]
    pub(super) allow_public_key_off_loopback: bool,
    /// SQL dialect: `dsql` refuses what DSQL refuses, with DSQL's SQLSTATE
    /// and message, and applies its transaction rules; `postgres` passes
    /// every statement through.
    #[arg(long, value_name = "DIALECT", default_value = "dsql")]
    dialect: dsql_local::Dialect,
    /// Writers never wait, as on DSQL: a statement that would wait this
    /// long for another transaction's row lock fails with 40001 (OC000)
    /// [default: PostgreSQL's waiting].
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_positive)]
    never_wait: Option<Duration>,
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

impl fmt::Debug for LocalArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalArgs")
            .field("listen", &self.listen)
            .field("upstream", &redact_url(&self.upstream))
            .field("dialect", &self.dialect)
            .field("endpoint_host", &self.endpoint_host)
            .field("region", &self.region)
            .field("regions", &self.regions)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "allow_public_key_off_loopback",
                &self.allow_public_key_off_loopback,
            )
            .field("session_lifetime", &self.session_lifetime)
            .field("transaction_timeout", &self.transaction_timeout)
            .field("max_connections", &self.max_connections)
            .field("connection_rate", &self.connection_rate)
            .field("connection_burst", &self.connection_burst)
            .field("ca_dir", &self.ca_dir)
            .field("refuse_auth_for", &self.refuse_auth_for)
            .field("commit_conflict_probability", &self.commit_conflict_probability)
            .field("latency", &self.latency)
            .field("drop_sessions_every", &self.drop_sessions_every)
            .field("stats_every", &self.stats_every)
            .finish()
    }
}

/// The upstream URL with any password replaced by `***`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
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
        self.builder(key)
            .build()
            .map_err(|e| Failure::Usage(e.to_string()))
    }

    /// With `--regions`: one endpoint per region, each on [`config`](Self::config)'s
    /// settings (validated, so that a bad list is a usage error).
    pub(super) fn regions(&self, key: Option<AccessKey>) -> Result<Option<RegionsBuilder>, Failure> {
        if self.regions.is_empty() {
            return Ok(None);
        }
        let regions = RegionsBuilder::new(self.builder(key)).regions(self.regions.iter().map(|r| r.trim()));
        regions.build().map_err(|e| Failure::Usage(e.to_string()))?;
        Ok(Some(regions))
    }

    /// Every flag's setting, for one endpoint.
    fn builder(&self, key: Option<AccessKey>) -> LocalConfigBuilder {
        let mut builder = DsqlLocal::builder()
            .listen(self.listen)
            .upstream(&self.upstream)
            .dialect(self.dialect);
        if let Some(wait) = self.never_wait {
            builder = builder.never_wait(wait);
        }
        if let Some(host) = &self.endpoint_host {
            builder = builder.endpoint_host(host);
        }
        if let Some(region) = &self.region {
            builder = builder.region(region);
        }
        if let Some(key) = key {
            builder = builder.without_default_key().access_key(key);
        }
        if self.allow_public_key_off_loopback {
            builder = builder.allow_public_key_off_loopback(true);
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
        builder
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        local: LocalArgs,
    }

    fn parse(args: &[&str]) -> LocalArgs {
        Cli::try_parse_from([&["local"], args].concat())
            .expect("valid flags")
            .local
    }

    #[test]
    fn debug_redacts_the_secrets() {
        let args = parse(&[
            "--access-key-id",
            "AKIDMINE",
            "--secret-access-key",
            "very-secret-value",
            "--upstream",
            "postgres://app:db-password@db.local:5432/app",
        ]);
        let debug = format!("{args:?}");
        assert!(!debug.contains("very-secret-value"), "{debug}");
        assert!(!debug.contains("db-password"), "{debug}");
        assert!(
            debug.contains("AKIDMINE") && debug.contains("<redacted>"),
            "{debug}"
        );
        assert!(debug.contains("postgres://app:***@db.local:5432/app"), "{debug}");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
    }

    #[test]
    fn the_secret_flag_warns_about_ps() {
        let mut command = Cli::command();
        let help = command.render_long_help().to_string();
        let start = help.find("--secret-access-key").expect("the flag");
        let text = &help[start..start + 400.min(help.len() - start)];
        assert!(text.contains("ps"), "{text}");
        assert!(text.contains("DSQL_LOCAL_SECRET_ACCESS_KEY"), "{text}");
    }

    #[test]
    fn the_public_key_stays_on_loopback_unless_allowed() {
        let args = parse(&["--listen", "0.0.0.0:15432"]);
        let Err(Failure::Usage(message)) = args.config(args.access_key().unwrap()) else {
            panic!("the public key on 0.0.0.0 is refused");
        };
        assert!(message.contains("--allow-public-key-off-loopback"), "{message}");
        assert!(message.contains("--access-key-id"), "{message}");

        let args = parse(&["--listen", "0.0.0.0:15432", "--allow-public-key-off-loopback"]);
        let config = args.config(args.access_key().unwrap()).expect("allowed");
        assert!(config.public_key_off_loopback());

        let args = parse(&[
            "--listen",
            "0.0.0.0:15432",
            "--access-key-id",
            "AKIDMINE",
            "--secret-access-key",
            "mine",
        ]);
        let config = args.config(args.access_key().unwrap()).expect("own key");
        assert!(!config.public_key_off_loopback());

        let args = parse(&["--listen", "127.0.0.1:0"]);
        assert!(args.config(None).is_ok());
    }

    #[test]
    fn regions_are_a_list_that_replaces_the_endpoint_flags() {
        let args = parse(&["--regions", "us-east-1,us-east-2", "--listen", "127.0.0.1:0"]);
        let regions = args.regions(None).expect("valid").expect("regions");
        let configs = regions.build().expect("valid");
        assert_eq!(configs.len(), 2);
        assert_eq!(configs[1].endpoint().region(), "us-east-2");
        assert!(
            parse(&["--listen", "127.0.0.1:0"])
                .regions(None)
                .expect("valid")
                .is_none()
        );
        let args = parse(&["--regions", "us-east-1,us-east-1"]);
        let Err(Failure::Usage(message)) = args.regions(None) else {
            panic!("a region twice is refused");
        };
        assert!(message.contains("us-east-1 is given twice"), "{message}");
        for conflicting in [["--region", "us-east-1"], ["--endpoint-host", "localhost"]] {
            let flags = [&["--regions", "us-east-1,us-east-2"][..], &conflicting[..]].concat();
            assert!(
                Cli::try_parse_from([&["local"][..], &flags[..]].concat()).is_err(),
                "{conflicting:?}"
            );
        }
    }
}
