//! dsql-local in a child process, so that the front end does not share the
//! benchmark's runtime or scheduler.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;

use clap::Args;
use dsql_auth::DsqlConfig;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::BoxError;

/// What the child prints, one `key=value` per line, then `ready`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Upstream PostgreSQL URL.
    #[arg(long)]
    upstream: String,
}

/// Runs dsql-local until stdin closes (the parent exits or stops it).
pub(crate) async fn serve(args: ServeArgs) -> Result<(), BoxError> {
    let local = dsql_local::DsqlLocal::builder()
        .upstream(args.upstream)
        .start()
        .await?;
    let key = local.access_key();
    println!("addr={}", local.addr());
    println!("host={}", local.host());
    println!("ca={}", local.ca_path().display());
    println!("access_key_id={}", key.access_key_id());
    println!("secret_access_key={}", key.secret_access_key());
    println!("ready");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(_)) = stdin.next_line().await {}
    local.shutdown().await;
    Ok(())
}

/// A dsql-local child process.
pub(crate) struct LocalProcess {
    child: Child,
    addr: SocketAddr,
    host: String,
    ca: PathBuf,
    access_key_id: String,
    secret_access_key: String,
}

impl LocalProcess {
    pub(crate) async fn spawn(upstream: &str) -> Result<Self, BoxError> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["serve-local", "--upstream", upstream])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout from the dsql-local child")?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut addr, mut host, mut ca, mut akid, mut secret) = (None, None, None, None, None);
        while let Some(line) = lines.next_line().await? {
            match line.split_once('=') {
                Some(("addr", v)) => addr = Some(v.parse()?),
                Some(("host", v)) => host = Some(v.to_owned()),
                Some(("ca", v)) => ca = Some(PathBuf::from(v)),
                Some(("access_key_id", v)) => akid = Some(v.to_owned()),
                Some(("secret_access_key", v)) => secret = Some(v.to_owned()),
                _ if line == "ready" => break,
                _ => {}
            }
        }
        Ok(Self {
            child,
            addr: addr.ok_or("the dsql-local child did not start")?,
            host: host.ok_or("no host from the dsql-local child")?,
            ca: ca.ok_or("no CA from the dsql-local child")?,
            access_key_id: akid.ok_or("no key from the dsql-local child")?,
            secret_access_key: secret.ok_or("no key from the dsql-local child")?,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
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
        dsql_auth::aws::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            None,
            None,
            "dsql-local",
        )
    }

    pub(crate) async fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait().await;
    }
}
