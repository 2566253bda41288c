//! `dsqlctl local` as a user runs it: start it, read what it prints, connect
//! through TLS with verify-full and a token signed with the printed key, stop
//! it with Ctrl-C (SIGINT). Needs the PostgreSQL on 127.0.0.1:5432.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use dsql_auth::aws::Credentials;
use dsql_auth::{DsqlConfig, SigningProvider, TokenProvider};
use dsql_local::{DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY};
use tokio_postgres::config::SslMode;

const BIN: &str = env!("CARGO_BIN_EXE_dsqlctl");

/// `dsqlctl` with a clean environment: no AWS credentials, no IMDS.
fn dsqlctl(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", "/nonexistent");
    command
}

/// A running `dsqlctl local`: killed and reaped when dropped, whatever
/// happened.
struct Running {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = dsqlctl(&[&["local"], args].concat());
        command.envs(env.iter().copied());
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Self {
            child,
            stdout,
            stderr: Some(stderr),
        }
    }

    /// The startup banner: stdout up to the `DSQL_LOCAL_URL` line.
    fn banner(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut banner = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    banner.push_str(&line);
                    banner.push('\n');
                    if line.contains("DSQL_LOCAL_URL=") {
                        return banner;
                    }
                }
                Err(e) => panic!(
                    "no banner ({e}); stdout so far:\n{banner}\nexit: {:?}",
                    self.child.try_wait()
                ),
            }
        }
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit; returns its status and
    /// stderr.
    fn interrupt(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "still running 15 s after SIGINT");
            thread::sleep(Duration::from_millis(50));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (status, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Reap the child even when an assertion failed.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value printed after `label:` in the banner.
fn field<'a>(banner: &'a str, label: &str) -> &'a str {
    banner
        .lines()
        .find_map(|line| line.trim_start().strip_prefix(&format!("{label}:")))
        .unwrap_or_else(|| panic!("no {label} in:\n{banner}"))
        .trim()
}

/// The shell command printed on the line that starts with `prefix`.
fn command_line<'a>(banner: &'a str, prefix: &str) -> &'a str {
    banner
        .lines()
        .map(str::trim_start)
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{banner}"))
}

/// Verify-full against the CA in the file `ca`.
fn tls(ca: &Path) -> tokio_postgres_rustls::MakeRustlsConnect {
    dsql_testkit::tls::verify_full(&std::fs::read_to_string(ca).unwrap())
}

/// Connects to the endpoint `config` describes, verify-full, with a token
/// signed with the test key `key_id`.
async fn connect(config: &DsqlConfig, key_id: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    connect_with_key(config, key_id, DEFAULT_SECRET_ACCESS_KEY).await
}

async fn connect_with_key(
    config: &DsqlConfig,
    key_id: &str,
    secret: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let credentials = Credentials::new(key_id, secret, None, None, "test");
    let token = SigningProvider::builder(config)
        .credentials_provider(credentials)
        .build()
        .token()
        .await
        .unwrap();
    let mut pg = tokio_postgres::Config::new();
    pg.host(config.endpoint().host())
        .hostaddr(config.hostaddr().unwrap())
        .port(config.port())
        .user(config.user())
        .dbname(config.database())
        .password(token.expose_secret())
        .ssl_mode(SslMode::Require)
        .connect_timeout(Duration::from_secs(10));
    let (client, connection) = pg.connect(tls(config.ssl_root_cert().unwrap())).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The connection URL printed in `banner`, parsed.
fn config_of(banner: &str) -> DsqlConfig {
    let url = command_line(banner, "export DSQL_LOCAL_URL=")
        .strip_prefix("export DSQL_LOCAL_URL=")
        .unwrap()
        .trim_matches('\'');
    DsqlConfig::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

#[tokio::test]
async fn local_serves_verify_full_clients_until_interrupted() {
    let mut local = Running::start(&["--listen", "127.0.0.1:0", "--latency", "1ms"]);
    let banner = local.banner();

    // What it prints is what the connection URL says.
    let config = config_of(&banner);
    let addr = field(&banner, "address");
    assert_eq!(addr, format!("{}:{}", config.hostaddr().unwrap(), config.port()));
    assert_ne!(config.port(), 0);
    assert_eq!(field(&banner, "endpoint host"), config.endpoint().host());
    let ca = PathBuf::from(field(&banner, "CA certificate").split(" (").next().unwrap());
    assert_eq!(config.ssl_root_cert(), Some(ca.as_path()));
    assert!(ca.is_file());
    let key_id = field(&banner, "access key id");
    assert_eq!(key_id, DEFAULT_ACCESS_KEY_ID);
    // The public test secret is shown, and said to be one.
    assert!(field(&banner, "secret access key").starts_with(DEFAULT_SECRET_ACCESS_KEY));
    assert!(banner.contains("public test key"), "{banner}");

    // tokio-postgres with rustls, verify-full against the printed CA.
    let client = connect(&config, key_id).await.unwrap();
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    drop(client);

    // The printed psql commands work as printed (`dsqlctl token` signs with
    // the key they name).
    // The migration a real cluster refuses (DDL twice in one implicit
    // transaction) is refused here too, with DSQL's words, and psql's
    // `\set ON_ERROR_STOP` exit code says so.
    let script = format!(
        "{export}\n{psql} -X -A -t -c 'SELECT 1'\n\
         {psql} -X -v ON_ERROR_STOP=1 -c 'CREATE TABLE dsqlctl_psql_t (id uuid PRIMARY KEY); \
         CREATE INDEX ASYNC ON dsqlctl_psql_t (id)' && echo accepted",
        export = command_line(&banner, "export PGPASSWORD="),
        psql = command_line(&banner, "psql ")
    );
    let bin_dir = Path::new(BIN).parent().unwrap().display().to_string();
    let psql = tokio::task::spawn_blocking(move || {
        Command::new("sh")
            .args(["-c", &script])
            .env_clear()
            .env("PATH", format!("{bin_dir}:/usr/local/bin:/usr/bin:/bin"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HOME", "/nonexistent")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&psql.stderr);
    assert!(!psql.status.success(), "the migration was accepted: {stderr}");
    // psql prints each statement's result: the CREATE TABLE ran, and was
    // rolled back with the implicit transaction.
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), "1\nCREATE TABLE");
    assert!(
        stderr.contains("ERROR:  multiple ddl statements not supported in a transaction"),
        "psql: {stderr}"
    );

    // Ctrl-C: a clean exit, final stats logged, temporary CA removed.
    let (status, stderr) = local.interrupt();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("final stats"), "{stderr}");
    assert!(stderr.contains("sessions_opened=3"), "{stderr}");
    assert!(!ca.exists(), "the temporary CA is left behind");
    // The secret is on stdout on purpose; no token or signature is logged.
    assert!(!stderr.contains("X-Amz-Signature"), "{stderr}");
}

#[tokio::test]
async fn fault_flags_are_applied() {
    // Authentication refused for a window.
    let mut local = Running::start(&["--listen", "127.0.0.1:0", "--refuse-auth-for", "1h"]);
    let config = config_of(&local.banner());
    let refused = connect(&config, DEFAULT_ACCESS_KEY_ID)
        .await
        .expect_err("refused");
    let db = refused.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "08006", "{db:?}");
    assert!(db.message().contains("access denied"), "{db:?}");
    let (status, stderr) = local.interrupt();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("fault_injected"), "{stderr}");

    // Injected conflicts at COMMIT, sessions dropped periodically, stats
    // logged periodically.
    let mut local = Running::start(&[
        "--listen",
        "127.0.0.1:0",
        "--commit-conflict-probability",
        "1",
        "--drop-sessions-every",
        "1.5",
        "--stats-every",
        "100ms",
    ]);
    let config = config_of(&local.banner());
    let client = connect(&config, DEFAULT_ACCESS_KEY_ID).await.unwrap();
    client.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let conflict = client.batch_execute("COMMIT").await.expect_err("OC000");
    let db = conflict.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "40001", "{db:?}");
    assert!(db.message().contains("OC000"), "{db:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.is_closed() {
        assert!(Instant::now() < deadline, "the session was never dropped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, stderr) = local.interrupt();
    assert!(status.success(), "{status:?}: {stderr}");
    let periodic = stderr.lines().filter(|l| l.contains(": stats ")).count();
    assert!(periodic >= 2, "{periodic} periodic stats lines: {stderr}");
    assert!(stderr.contains("dropped every open session"), "{stderr}");
    let last = stderr.lines().rfind(|l| l.contains("final stats")).unwrap();
    assert!(last.contains("sessions_dropped_by_faults=1"), "{last}");
    assert!(last.contains("conflicts=1"), "{last}");
}

#[tokio::test]
async fn a_custom_key_replaces_the_test_key_and_is_not_shown() {
    const SECRET: &str = "custom/secret/for/this/test";
    let mut local = Running::start_with_env(
        &["--listen", "127.0.0.1:0", "--access-key-id", "AKIDCUSTOM"],
        &[("DSQL_LOCAL_SECRET_ACCESS_KEY", SECRET)],
    );
    let banner = local.banner();
    assert_eq!(field(&banner, "access key id"), "AKIDCUSTOM");
    assert!(!banner.contains(SECRET), "{banner}");
    let config = config_of(&banner);
    connect_with_key(&config, "AKIDCUSTOM", SECRET)
        .await
        .expect("the custom key is accepted");
    let refused = connect(&config, DEFAULT_ACCESS_KEY_ID)
        .await
        .expect_err("test key refused");
    assert_eq!(
        refused.as_db_error().expect("a server error").code().code(),
        "08006"
    );
    let (status, stderr) = local.interrupt();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
}

fn assert_usage_error(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{needle}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{needle}: {stderr}");
    assert!(stderr.starts_with("dsqlctl: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle}: {stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    for (args, needle) in [
        (&["--latency", "5x"][..], "--latency"),
        (&["--session-lifetime", "0"], "--session-lifetime"),
        (&["--drop-sessions-every=-1s"], "--drop-sessions-every"),
        // Used to panic (`Instant` overflow) once started; now refused.
        (&["--stats-every", "10000000000000000000"], "--stats-every"),
        (&["--drop-sessions-every", "8761h"], "longer than a year"),
        (&["--commit-conflict-probability", "1.5"], "between 0 and 1"),
        (&["--max-connections", "0"], "--max-connections"),
        (&["--connection-rate", "0"], "--connection-rate"),
        (&["--listen", "localhost"], "--listen"),
        (&["--access-key-id", "AKIDOTHER"], "needs --secret-access-key"),
        (&["--upstream", "mysql://db"], "upstream"),
        (
            &[
                "--endpoint-host",
                "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws",
                "--region",
                "eu-west-1",
            ],
            "region",
        ),
        (&["--no-such-flag"], "--no-such-flag"),
    ] {
        let output = dsqlctl(&[&["local"], args].concat()).output().unwrap();
        assert_usage_error(&output, needle);
    }
}

#[test]
fn an_address_in_use_fails_with_exit_code_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = dsqlctl(&["local", "--listen", &addr]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
}

#[test]
fn the_public_test_key_off_loopback_needs_the_flag_and_warns() {
    let output = dsqlctl(&["local", "--listen", "0.0.0.0:0"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--allow-public-key-off-loopback"), "{stderr}");
    assert!(stderr.contains("--access-key-id"), "{stderr}");

    let mut running = Running::start(&["--listen", "0.0.0.0:0", "--allow-public-key-off-loopback"]);
    let banner = running.banner();
    assert!(banner.contains("0.0.0.0:"), "{banner}");
    let (status, stderr) = running.interrupt();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("WARNING"), "{stderr}");
    assert!(stderr.contains("anyone who reaches"), "{stderr}");
}

#[tokio::test]
async fn regions_serve_one_database_each_with_its_own_endpoint() {
    let mut local = Running::start(&[
        "--listen",
        "127.0.0.1:0",
        "--regions",
        "us-east-1,us-east-2",
        "--latency",
        "1ms",
    ]);
    let banner = local.banner();
    assert!(banner.contains("running 2 regions"), "{banner}");
    assert!(banner.contains("Region us-east-1 (local):"), "{banner}");
    assert!(banner.contains("Region us-east-2:"), "{banner}");

    // Each region's URL, as one endpoint's, and its psql command.
    let mut configs = Vec::new();
    for (region, var) in [
        ("us-east-1", "DSQL_LOCAL_URL_US_EAST_1"),
        ("us-east-2", "DSQL_LOCAL_URL_US_EAST_2"),
    ] {
        let prefix = format!("export {var}=");
        let url = command_line(&banner, &prefix)
            .strip_prefix(&prefix)
            .unwrap()
            .trim_matches('\'');
        let config = DsqlConfig::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(config.endpoint().region(), region);
        assert!(
            banner.contains(&format!("--region {region} --user admin")),
            "{banner}"
        );
        configs.push(config);
    }
    let (east1, east2) = (&configs[0], &configs[1]);
    assert_ne!(east1.port(), east2.port());
    assert_ne!(east1.endpoint().host(), east2.endpoint().host());
    assert_eq!(east1.ssl_root_cert(), east2.ssl_root_cert(), "one CA");

    // The multi-host URL names both, the local region first.
    let multi = command_line(&banner, "export DSQL_LOCAL_URL=")
        .strip_prefix("export DSQL_LOCAL_URL=")
        .unwrap()
        .trim_matches('\'');
    let hosts = format!(
        "@{}:{},{}:{}/postgres?hostaddr=127.0.0.1,127.0.0.1&sslrootcert=",
        east1.endpoint().host(),
        east1.port(),
        east2.endpoint().host(),
        east2.port()
    );
    assert!(multi.contains(&hosts), "{multi}");
    let set = dsql_auth::ClusterSet::from_url(multi).unwrap_or_else(|e| panic!("{multi}: {e}"));
    assert_eq!(set.members(), configs.as_slice());

    // One database: written in one region, read in the other.
    let table = dsql_testkit::unique("dsqlctl_regions");
    let a = connect(east1, DEFAULT_ACCESS_KEY_ID).await.unwrap();
    let b = connect(east2, DEFAULT_ACCESS_KEY_ID).await.unwrap();
    a.batch_execute(&format!("CREATE TABLE {table} (id uuid PRIMARY KEY)"))
        .await
        .unwrap();
    a.batch_execute(&format!("INSERT INTO {table} VALUES (gen_random_uuid())"))
        .await
        .unwrap();
    let n: i64 = b
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    b.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
    drop((a, b));

    let ca = east1.ssl_root_cert().unwrap().to_owned();
    let (status, stderr) = local.interrupt();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("final stats"), "{stderr}");
    assert!(stderr.contains("region=us-east-2"), "{stderr}");
    assert!(!ca.exists(), "the temporary CA is left behind");
}
