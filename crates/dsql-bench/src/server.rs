//! dsql-local in a child process, so that the front end does not share the
//! benchmark's runtime or scheduler.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use dsql_auth::DsqlConfig;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::BoxError;
use crate::child::{Child, ChildKey};

/// What the child prints, one `key=value` per line, then `ready`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Upstream PostgreSQL URL.
    #[arg(long)]
    upstream: String,
    /// The endpoint's host name (TLS name and token host).
    #[arg(long, default_value = "localhost")]
    endpoint_host: String,
    /// Sessions end after this many milliseconds (DSQL: one hour).
    #[arg(long)]
    session_lifetime_ms: Option<u64>,
    /// Drops every session every this many milliseconds.
    #[arg(long)]
    drop_all_every_ms: Option<u64>,
    /// Largest startup packet, bytes (default: dsql-local's, 10,000).
    #[arg(long)]
    max_startup_packet: Option<usize>,
    /// Largest client message, bytes (default: dsql-local's, 64 MiB).
    #[arg(long)]
    max_message_size: Option<usize>,
    /// Bytes all sessions' message buffers may hold together (default:
    /// dsql-local's, 512 MiB).
    #[arg(long)]
    max_buffered_bytes: Option<usize>,
    /// Connections in their handshake at once (default: dsql-local's, 256).
    #[arg(long)]
    max_pending_handshakes: Option<usize>,
    /// Open connections (default: dsql-local's, 10,000).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Time a client has to finish its handshake, milliseconds (default:
    /// dsql-local's, 30 s).
    #[arg(long)]
    handshake_timeout_ms: Option<u64>,
    /// No connection-rate limit (default: dsql-local's, 100/s, burst 1,000).
    #[arg(long)]
    no_connection_rate_limit: bool,
    /// SQL dialect: dsql (the default) or postgres.
    #[arg(long, default_value = "dsql")]
    dialect: dsql_local::Dialect,
    /// Writers never wait: a row-lock wait longer than this many
    /// milliseconds fails at once as DSQL's conflict (default: PostgreSQL's
    /// waiting).
    #[arg(long)]
    never_wait_ms: Option<u64>,
    /// The modelled network's round trip between clients and the front
    /// end, microseconds (default: none, loopback's).
    #[arg(long)]
    round_trip_us: Option<u64>,
}

/// Bounds and limits a command wants its dsql-local child to run with
/// (`None`: dsql-local's default). The child reports the values it runs
/// with; see [`LocalProcess::setting`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ServerLimits {
    pub(crate) max_startup_packet: Option<usize>,
    pub(crate) max_message_size: Option<usize>,
    pub(crate) max_buffered_bytes: Option<usize>,
    pub(crate) max_pending_handshakes: Option<usize>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) no_connection_rate_limit: bool,
    pub(crate) dialect: Option<dsql_local::Dialect>,
    /// dsql-local's `never_wait` lock wait bound: conflicts fail fast, as in
    /// DSQL, instead of queueing on PostgreSQL's row locks.
    pub(crate) never_wait: Option<Duration>,
    /// The modelled network's round trip between clients and the front end.
    pub(crate) round_trip: Option<Duration>,
}

impl ServerLimits {
    /// The `serve-local` arguments that set these limits.
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let sizes = [
            ("max-startup-packet", self.max_startup_packet),
            ("max-message-size", self.max_message_size),
            ("max-buffered-bytes", self.max_buffered_bytes),
            ("max-pending-handshakes", self.max_pending_handshakes),
            ("max-connections", self.max_connections),
        ];
        for (name, value) in sizes {
            if let Some(value) = value {
                args.push(format!("--{name}={value}"));
            }
        }
        if let Some(timeout) = self.handshake_timeout {
            args.push(format!("--handshake-timeout-ms={}", timeout.as_millis()));
        }
        if self.no_connection_rate_limit {
            args.push("--no-connection-rate-limit".to_owned());
        }
        if let Some(dialect) = self.dialect {
            args.push(format!("--dialect={dialect}"));
        }
        if let Some(round_trip) = self.round_trip {
            args.push(format!("--round-trip-us={}", round_trip.as_micros()));
        }
        if let Some(wait) = self.never_wait {
            args.push(format!("--never-wait-ms={}", wait.as_millis()));
        }
        args
    }
}

/// How a scenario wants its dsql-local child.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ServerFaults {
    pub(crate) session_lifetime: Option<Duration>,
    pub(crate) drop_all_every: Option<Duration>,
}

/// Runs dsql-local until stdin closes (the parent exits or stops it).
pub(crate) async fn serve(args: ServeArgs) -> Result<(), BoxError> {
    let mut builder = dsql_local::DsqlLocal::builder()
        .upstream(args.upstream)
        .endpoint_host(args.endpoint_host)
        .dialect(args.dialect);
    if let Some(ms) = args.session_lifetime_ms {
        builder = builder.session_lifetime(Duration::from_millis(ms));
    }
    if let Some(bytes) = args.max_startup_packet {
        builder = builder.max_startup_packet(bytes);
    }
    if let Some(bytes) = args.max_message_size {
        builder = builder.max_message_size(bytes);
    }
    if let Some(bytes) = args.max_buffered_bytes {
        builder = builder.max_buffered_bytes(bytes);
    }
    if let Some(n) = args.max_pending_handshakes {
        builder = builder.max_pending_handshakes(n);
    }
    if let Some(n) = args.max_connections {
        builder = builder.max_connections(n);
    }
    if let Some(ms) = args.handshake_timeout_ms {
        builder = builder.handshake_timeout(Duration::from_millis(ms));
    }
    if args.no_connection_rate_limit {
        builder = builder.no_connection_rate_limit();
    }
    if let Some(us) = args.round_trip_us {
        builder = builder.network_round_trip(Duration::from_micros(us));
    }
    if let Some(ms) = args.never_wait_ms {
        builder = builder.never_wait(Duration::from_millis(ms));
    }
    let config = builder.build()?;
    // The values the front end really runs with (defaults included), so that
    // the parent computes from them rather than from its own idea of them.
    let bounds = config.bounds();
    let settings = [
        ("max_startup_packet", bounds.max_startup_packet.to_string()),
        ("max_message_size", bounds.max_message_size.to_string()),
        ("max_buffered_bytes", bounds.max_buffered_bytes.to_string()),
        (
            "max_pending_handshakes",
            bounds.max_pending_handshakes.to_string(),
        ),
        ("max_connections", config.max_connections().to_string()),
        (
            "handshake_timeout_ms",
            config.handshake_timeout().as_millis().to_string(),
        ),
        (
            "connection_rate",
            config.connection_rate().map_or_else(
                || "none".to_owned(),
                |r| format!("{}/s burst {}", r.per_second, r.burst),
            ),
        ),
    ];
    let local = dsql_local::DsqlLocal::start(config).await?;
    if let Some(ms) = args.drop_all_every_ms {
        let faults = local.faults();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(ms));
            every.tick().await;
            loop {
                every.tick().await;
                faults.drop_all_sessions();
            }
        });
    }
    let key = local.access_key();
    println!("addr={}", local.addr());
    println!("host={}", local.host());
    println!("ca={}", local.ca_path().display());
    println!("access_key_id={}", key.access_key_id());
    println!("secret_access_key={}", key.secret_access_key());
    for (name, value) in settings {
        println!("setting.{name}={value}");
    }
    println!("ready");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = stdin.next_line().await {
        println!("{}", control(&local, &line));
    }
    local.shutdown().await;
    Ok(())
}

/// Applies one fault command from the parent; answers one line.
fn control(local: &dsql_local::DsqlLocal, line: &str) -> String {
    use dsql_local::{CommitDrop, Latency};
    let faults = local.faults();
    let mut words = line.split_whitespace();
    let command = words.next().unwrap_or("");
    let number = words.next().and_then(|w| w.parse::<f64>().ok());
    let millis = || Duration::from_secs_f64(number.unwrap_or(0.0).max(0.0) / 1000.0);
    match command {
        "drop-all" => return format!("ok {}", faults.drop_all_sessions()),
        "drop" => {
            return format!(
                "ok {}",
                faults.drop_sessions(number.unwrap_or(0.0).clamp(0.0, 1.0))
            );
        }
        "refuse-auth" => faults.refuse_auth_for(millis()),
        "latency" if millis().is_zero() => faults.clear_latency(),
        "latency" => faults.set_latency(Latency::PerQuery(millis())),
        "conflicts" => faults.inject_commit_conflicts(number.unwrap_or(0.0).clamp(0.0, 1.0)),
        "drop-before-commit" => faults.drop_at_next_commit(CommitDrop::BeforeForwarding),
        "drop-after-commit" => faults.drop_at_next_commit(CommitDrop::AfterForwarding),
        "pause" => faults.pause_accepting(),
        "resume" => faults.resume_accepting(),
        "clear" => faults.clear(),
        "stats" => {
            let s = local.stats().snapshot();
            return format!(
                "stats accepted={} refused={} sessions_opened={} sessions_expired={} \
                 dropped_by_faults={} conflicts_rewritten={} conflicts_injected={} \
                 current_sessions={} round_trips={} line_deliveries={} line_late_us={}",
                s.accepted,
                s.refused.total(),
                s.sessions_opened,
                s.sessions_expired,
                s.sessions_dropped_by_faults,
                s.conflicts_rewritten,
                s.conflicts_injected,
                s.current_sessions,
                s.round_trips,
                s.line_deliveries,
                s.line_late_us
            );
        }
        _ => return format!("error unknown command {command:?}"),
    }
    "ok".to_owned()
}

/// A plain connection to the upstream PostgreSQL (no front end), for
/// setting up tables and checking results.
pub(crate) async fn upstream_client(upstream: &str) -> Result<tokio_postgres::Client, BoxError> {
    let (client, connection) = tokio_postgres::connect(upstream, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A dsql-local child process.
pub(crate) struct LocalProcess {
    child: Child,
    addr: SocketAddr,
    host: String,
    ca: PathBuf,
    key: ChildKey,
    /// `setting.<name>=<value>` lines: the limits the child runs with.
    settings: BTreeMap<String, String>,
}

impl LocalProcess {
    pub(crate) async fn spawn(upstream: &str, faults: ServerFaults) -> Result<Self, BoxError> {
        Self::spawn_with_limits(upstream, faults, &ServerLimits::default()).await
    }

    /// A child with `limits` besides `faults`.
    pub(crate) async fn spawn_with_limits(
        upstream: &str,
        faults: ServerFaults,
        limits: &ServerLimits,
    ) -> Result<Self, BoxError> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["serve-local", "--upstream", upstream]);
        command.args(limits.args());
        if let Some(lifetime) = faults.session_lifetime {
            command.arg(format!("--session-lifetime-ms={}", lifetime.as_millis()));
        }
        if let Some(every) = faults.drop_all_every {
            command.arg(format!("--drop-all-every-ms={}", every.as_millis()));
        }
        let (child, pairs) = Child::spawn(command, "dsql-local").await?;
        let (mut addr, mut host, mut ca) = (None, None, None);
        let mut settings = BTreeMap::new();
        for (key, value) in &pairs {
            if let Some(name) = key.strip_prefix("setting.") {
                settings.insert(name.to_owned(), value.clone());
                continue;
            }
            match key.as_str() {
                "addr" => addr = Some(value.parse()?),
                "host" => host = Some(value.clone()),
                "ca" => ca = Some(PathBuf::from(value)),
                _ => {}
            }
        }
        Ok(Self {
            addr: addr.ok_or("the dsql-local child did not start")?,
            host: host.ok_or("no host from the dsql-local child")?,
            ca: ca.ok_or("no CA from the dsql-local child")?,
            key: ChildKey::from_pairs(&pairs).ok_or("no key from the dsql-local child")?,
            settings,
            child,
        })
    }

    /// A limit the child reported it runs with (`max_buffered_bytes`, ...).
    pub(crate) fn setting(&self, name: &str) -> Option<&str> {
        self.settings.get(name).map(String::as_str)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn ca_path(&self) -> &std::path::Path {
        &self.ca
    }

    /// A client configuration for `user`, with `application_name`.
    pub(crate) fn config(&self, user: &str, application_name: &str) -> Result<DsqlConfig, BoxError> {
        Ok(DsqlConfig::builder()
            .endpoint(dsql_auth::Endpoint::parse(&self.host, Some("us-east-1"))?)
            .user(user)
            .port(self.addr.port())
            .hostaddr(self.addr.ip())
            .ssl_root_cert(&self.ca)
            .application_name(application_name)
            .build()?)
    }

    pub(crate) fn credentials(&self) -> dsql_auth::aws::Credentials {
        self.key.credentials()
    }

    /// A token for `config`, signed with the child's key.
    pub(crate) async fn sign(&self, config: &DsqlConfig) -> Result<dsql_auth::AuthToken, BoxError> {
        use dsql_auth::TokenProvider as _;
        Ok(dsql_auth::SigningProvider::builder(config)
            .credentials_provider(self.credentials())
            .build()
            .token()
            .await?)
    }

    /// The driver's configuration for `config`, a token signed now as its
    /// password.
    pub(crate) async fn signed_pg_config(
        &self,
        config: &DsqlConfig,
    ) -> Result<tokio_postgres::Config, BoxError> {
        let token = self.sign(config).await?;
        let mut pg = dsql_tower::connect::pg_config(config);
        pg.password(token.expose_secret());
        Ok(pg)
    }

    /// Sends a fault command (see `control`) and returns the child's answer.
    pub(crate) async fn command(&mut self, command: &str) -> Result<String, BoxError> {
        self.child.command(command).await
    }

    /// One counter of the child's `stats` answer (`round_trips`,
    /// `current_sessions`, …).
    pub(crate) async fn stat(&mut self, name: &str) -> Result<u64, BoxError> {
        let [value] = self.stats([name]).await?;
        Ok(value)
    }

    /// Counters read from one `stats` answer, so that they are of one
    /// instant.
    pub(crate) async fn stats<const N: usize>(&mut self, names: [&str; N]) -> Result<[u64; N], BoxError> {
        let stats = self.command("stats").await?;
        let mut values = [0; N];
        for (value, name) in values.iter_mut().zip(names) {
            *value = stats
                .split_whitespace()
                .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("no {name} in {stats:?}"))?;
        }
        Ok(values)
    }

    pub(crate) async fn stop(self) {
        self.child.stop().await;
    }
}
