//! `dsqlctl local`: a DSQL-compatible endpoint over a PostgreSQL
//! (`dsql-local`), until Ctrl-C.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use dsql_local::{
    AccessKey, DEFAULT_ACCESS_KEY_ID, DEFAULT_CONNECTION_BURST, DEFAULT_CONNECTION_RATE, DEFAULT_UPSTREAM,
    DsqlLocal, Latency, LocalConfig, RateLimit, StatsSnapshot,
};
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use crate::{Failure, duration};

/// The user the printed connection commands log in as.
const USER: &str = "admin";

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
    ca_dir: Option<PathBuf>,
    /// Fault: refuse every authentication for this long after start.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_positive)]
    refuse_auth_for: Option<Duration>,
    /// Fault: fail each COMMIT with 40001 (OC000) with this probability (0 to 1).
    #[arg(long, value_name = "P", value_parser = probability)]
    commit_conflict_probability: Option<f64>,
    /// Fault: delay each query (a Query or Sync message) by this much.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    latency: Option<Duration>,
    /// Fault: close every open session periodically, with this period.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_positive)]
    drop_sessions_every: Option<Duration>,
    /// How often the counters are logged (info level, on stderr; also at exit).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse_positive)]
    stats_every: Duration,
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
    fn access_key(&self) -> Result<Option<AccessKey>, Failure> {
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

    fn config(&self, key: Option<AccessKey>) -> Result<LocalConfig, Failure> {
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

pub(crate) async fn run(args: LocalArgs) -> Result<(), Failure> {
    let custom_key = args.access_key()?;
    let shows_secret = custom_key.is_none();
    let config = args.config(custom_key)?;
    // Without its password.
    let upstream = config.upstream();
    // Before anything is printed: a signal that arrives once the user sees
    // the banner must stop the server cleanly, not kill the process.
    let mut signals = Signals::new().map_err(|e| Failure::Runtime(format!("cannot handle signals: {e}")))?;
    let local = DsqlLocal::start(config)
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?;

    let faults = local.faults();
    if let Some(window) = args.refuse_auth_for {
        faults.refuse_auth_for(window);
    }
    if let Some(p) = args.commit_conflict_probability {
        faults.inject_commit_conflicts(p);
    }
    if let Some(delay) = args.latency.filter(|d| !d.is_zero()) {
        faults.set_latency(Latency::PerQuery(delay));
    }
    print!(
        "{}",
        banner(&local, &upstream, args.ca_dir.is_some(), shows_secret)
    );

    let stats = local.stats();
    let mut stats_tick = interval_at(Instant::now() + args.stats_every, args.stats_every);
    stats_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut drop_tick = args.drop_sessions_every.map(|period| {
        let mut tick = interval_at(Instant::now() + period, period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick
    });
    let signal = loop {
        tokio::select! {
            signal = signals.recv() => break signal,
            _ = stats_tick.tick() => log_stats(&stats.snapshot(), "stats"),
            _ = async {
                match drop_tick.as_mut() {
                    Some(tick) => tick.tick().await,
                    None => std::future::pending().await,
                }
            } => {
                let dropped = faults.drop_all_sessions();
                tracing::info!(dropped, "dropped every open session (--drop-sessions-every)");
            }
        }
    };
    tracing::info!(signal, "stopping: closing every session");
    local.shutdown().await;
    log_stats(&stats.snapshot(), "final stats");
    Ok(())
}

fn log_stats(s: &StatsSnapshot, message: &str) {
    tracing::info!(
        accepted = s.accepted,
        refused = s.refused.total(),
        refused_by_reason = ?s.refused,
        handshakes_failed = s.handshakes_failed,
        sessions_open = s.current_sessions,
        sessions_opened = s.sessions_opened,
        sessions_expired = s.sessions_expired,
        sessions_dropped_by_faults = s.sessions_dropped_by_faults,
        transactions_timed_out = s.transactions_timed_out,
        conflicts = s.conflicts(),
        cancels_relayed = s.cancels_relayed,
        bytes_from_clients = s.bytes_from_clients,
        bytes_to_clients = s.bytes_to_clients,
        "{message}"
    );
}

/// What is printed on stdout at start: where the endpoint is and how to
/// connect to it.
fn banner(local: &DsqlLocal, upstream: &str, persistent_ca: bool, shows_secret: bool) -> String {
    let key = local.access_key();
    let ca = local.ca_path().display().to_string();
    let ca_note = if persistent_ca {
        ""
    } else {
        " (temporary: removed at exit; --ca-dir keeps one)"
    };
    let (secret_line, secret_env) = if shows_secret {
        (
            format!(
                "{} (dsql-local's public test key, not an AWS secret: shown on purpose)",
                key.secret_access_key()
            ),
            sh_quote(key.secret_access_key()).into_owned(),
        )
    } else {
        (
            "the one given (not shown)".to_owned(),
            "<your --secret-access-key>".to_owned(),
        )
    };
    let token_command = format!(
        "AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={secret_env} AWS_SESSION_TOKEN= \
         dsqlctl token --host {} --region {} --user {USER}",
        sh_quote(key.access_key_id()),
        sh_quote(local.host()),
        sh_quote(local.endpoint().region()),
    );
    let key_note = if key.access_key_id() == DEFAULT_ACCESS_KEY_ID {
        "the test key above"
    } else {
        "the key above"
    };
    format!(
        "dsql-local is running; stop it with Ctrl-C.\n\
         \x20 endpoint host:     {host}\n\
         \x20 region:            {region}\n\
         \x20 address:           {addr}\n\
         \x20 upstream:          {upstream}\n\
         \x20 CA certificate:    {ca}{ca_note}\n\
         \x20 access key id:     {key_id}\n\
         \x20 secret access key: {secret_line}\n\
         \n\
         Connect with psql (the token is signed with {key_note}, not your AWS credentials, \
         and is valid for 15 minutes):\n\
         \x20 export PGPASSWORD=\"$({token_command})\"\n\
         \x20 psql {conninfo}\n\
         \n\
         Connection URL (dsql_auth::DsqlConfig::from_url):\n\
         \x20 export DSQL_LOCAL_URL={url}\n",
        host = local.host(),
        region = local.endpoint().region(),
        addr = local.addr(),
        key_id = key.access_key_id(),
        conninfo = sh_double_quote(&local.libpq_conninfo(USER)),
        url = sh_quote(&local.connection_url(USER)),
    )
}

/// `value` as one shell word: as is when it is safe, else single-quoted.
fn sh_quote(value: &str) -> Cow<'_, str> {
    let safe = |b: u8| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b);
    if !value.is_empty() && value.bytes().all(safe) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!("'{}'", value.replace('\'', r"'\''")))
    }
}

/// `value` in double quotes, for a shell.
fn sh_double_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Ctrl-C, and on Unix also SIGTERM: registered at creation.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> io::Result<Self> {
        Ok(Self {})
    }

    /// The name of the first signal received.
    #[cfg(unix)]
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "interrupt",
            _ = self.terminate.recv() => "terminate",
        }
    }

    #[cfg(not(unix))]
    async fn recv(&mut self) -> &'static str {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "interrupt",
            // Without a Ctrl-C handler, run until the process is killed.
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("AKIDLOCAL"), "AKIDLOCAL");
        assert_eq!(
            sh_quote("dsql-local/test/secret/not-a-real-aws-key"),
            "dsql-local/test/secret/not-a-real-aws-key"
        );
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_double_quote(r#"a'b "$x" \ `y`"#), r#""a'b \"\$x\" \\ \`y\`""#);
    }
}
