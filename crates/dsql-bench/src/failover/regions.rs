//! Two regional dsql-local endpoints of one cluster in a child process
//! (`dsql-bench serve-regions`), so that the client's CPU is the only CPU
//! this process spends: the front ends' TLS and relaying run in the child.
//! Region A (the local one, us-east-1) is cut off and healed through the
//! child's stdin.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use dsql_auth::{ClusterSet, DsqlConfig, Endpoint};
use dsql_local::{DsqlLocal, Regions, RegionsBuilder};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::BoxError;
use crate::child::{Child, ChildKey};

/// The regions, the local one (A) first.
const REGIONS: [&str; 2] = ["us-east-1", "us-east-2"];

/// Options of the hidden `serve-regions` command.
#[derive(Debug, Args)]
pub(crate) struct ServeRegionsArgs {
    /// Upstream PostgreSQL URL.
    #[arg(long)]
    upstream: String,
    /// The peers' cluster ids (26 lowercase letters and digits), A's first.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    cluster_ids: Vec<String>,
}

/// Runs the regions until stdin closes; prints how to reach them, one
/// `key=value` a line (`region=<host> <addr>` per region, A first), then
/// `ready`, and answers one line per command.
pub(crate) async fn serve(args: ServeRegionsArgs) -> Result<(), BoxError> {
    if args.cluster_ids.len() != REGIONS.len() {
        return Err(format!("{} cluster ids, one per region", REGIONS.len()).into());
    }
    let mut builder = RegionsBuilder::new(DsqlLocal::builder().upstream(args.upstream));
    for (region, id) in REGIONS.iter().zip(&args.cluster_ids) {
        builder = builder.peer(*region, id.as_str());
    }
    let regions = builder.start().await?;
    let key = regions.access_key();
    println!("ca={}", regions.ca_path().display());
    println!("access_key_id={}", key.access_key_id());
    println!("secret_access_key={}", key.secret_access_key());
    for local in regions.iter() {
        println!("region={} {}", local.host(), local.addr());
    }
    println!("ready");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = stdin.next_line().await {
        println!("{}", control(&regions, &line));
    }
    regions.shutdown().await;
    Ok(())
}

/// `isolate` and `heal` region A; `stats` of every region.
fn control(regions: &Regions, line: &str) -> String {
    match line.trim() {
        "isolate" => format!("ok {}", regions.local().faults().isolate()),
        "heal" => {
            regions.local().faults().heal();
            "ok".to_owned()
        }
        "stats" => {
            let each: Vec<String> = regions
                .iter()
                .map(|local| {
                    let s = local.stats().snapshot();
                    format!(
                        "{}: sessions_opened={} connects_refused_by_isolation={} \
                         sessions_cut_by_isolation={} commits_failed_by_isolation={} \
                         tokens_for_other_host={}",
                        local.endpoint().region(),
                        s.sessions_opened,
                        s.connects_refused_by_isolation,
                        s.sessions_cut_by_isolation,
                        s.commits_failed_by_isolation,
                        s.tokens_for_other_host
                    )
                })
                .collect();
            format!("stats {}", each.join("; "))
        }
        other => format!("error unknown command {other:?}"),
    }
}

/// The `serve-regions` child.
pub(super) struct RegionsProcess {
    child: Child,
    ca: PathBuf,
    key: ChildKey,
    /// Host and address of each region, A first.
    regions: Vec<(String, SocketAddr)>,
}

impl RegionsProcess {
    /// Starts the regions over `upstream`, their peers named `cluster_ids`
    /// (new ones per child: the client's connect rate limit is shared per
    /// endpoint host in this process).
    pub(super) async fn spawn(upstream: &str, cluster_ids: &[String]) -> Result<Self, BoxError> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(["serve-regions", "--upstream", upstream, "--cluster-ids"])
            .arg(cluster_ids.join(","));
        let (child, pairs) = Child::spawn(command, "regions").await?;
        let (mut ca, mut regions) = (None, Vec::new());
        for (key, value) in &pairs {
            match key.as_str() {
                "ca" => ca = Some(PathBuf::from(value)),
                "region" => {
                    let (host, addr) = value.split_once(' ').ok_or("a region line without address")?;
                    regions.push((host.to_owned(), addr.parse()?));
                }
                _ => {}
            }
        }
        if regions.len() != REGIONS.len() {
            return Err("the regions child did not start".into());
        }
        Ok(Self {
            ca: ca.ok_or("no CA from the regions child")?,
            key: ChildKey::from_pairs(&pairs).ok_or("no key from the regions child")?,
            regions,
            child,
        })
    }

    /// The client configuration of region `index` (0: A) for `admin`.
    pub(super) fn config(&self, index: usize, application_name: &str) -> Result<DsqlConfig, BoxError> {
        let (host, addr) = self.regions.get(index).ok_or("no such region")?;
        Ok(DsqlConfig::builder()
            .endpoint(Endpoint::parse(host, None)?)
            .user("admin")
            .port(addr.port())
            .hostaddr(addr.ip())
            .ssl_root_cert(&self.ca)
            .application_name(application_name)
            .build()?)
    }

    /// The cluster: A local, B its peer.
    pub(super) fn cluster(&self, application_name: &str) -> Result<ClusterSet, BoxError> {
        let mut cluster = ClusterSet::new(self.config(0, application_name)?);
        for index in 1..self.regions.len() {
            cluster = cluster.peer_config(self.config(index, application_name)?)?;
        }
        Ok(cluster)
    }

    pub(super) fn credentials(&self) -> dsql_auth::aws::Credentials {
        self.key.credentials()
    }

    /// Sends `isolate`, `heal` or `stats`; returns the child's answer once
    /// the command has taken effect.
    pub(super) async fn command(&mut self, command: &str) -> Result<String, BoxError> {
        self.child.command(command).await
    }

    pub(super) async fn stop(self) {
        self.child.stop().await;
    }
}
