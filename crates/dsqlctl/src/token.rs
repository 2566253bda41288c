//! `dsqlctl token`.

use std::ffi::OsString;
use std::time::Duration;

use clap::Args;
use dsql_auth::{ClusterSet, DsqlConfig, SigningProvider, TokenProvider};

use crate::Failure;

/// Where the endpoint comes from: `--url`, `--host`, or the environment
/// (`CLUSTER_ENDPOINT`, `REGION`, `CLUSTER_USER`, … as in AWS's examples).
/// Flags override the environment. A multi-region cluster's peers come
/// from `--peer`, a multi-host `--url`, or `CLUSTER_PEER_ENDPOINTS`: each
/// gets its own token (a token is bound to one endpoint host).
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[arg(
        long,
        conflicts_with = "host",
        help = "Connection URL: postgres://user@host[:port][,peer[:port]…]/db?region=…&tokenDurationSecs=…"
    )]
    url: Option<String>,
    #[arg(
        long,
        help = "Endpoint host name (<cluster-id>.dsql.<region>.on.aws) or bare cluster id"
    )]
    host: Option<String>,
    /// AWS region; must agree with the host name's.
    #[arg(long)]
    region: Option<String>,
    /// Database role; `admin` gets a DbConnectAdmin token, others DbConnect.
    #[arg(long, conflicts_with = "admin")]
    user: Option<String>,
    /// Shorthand for `--user admin`.
    #[arg(long)]
    admin: bool,
    /// Token validity in seconds (1 to 604800; default 900).
    #[arg(long, value_name = "SECS")]
    expires_in: Option<u64>,
    /// AWS profile to take credentials from.
    #[arg(long)]
    profile: Option<String>,
    /// A peer endpoint of a multi-region cluster (its full host name);
    /// repeat for more. Replaces `CLUSTER_PEER_ENDPOINTS`.
    #[arg(long = "peer", value_name = "HOST", conflicts_with = "url")]
    peers: Vec<String>,
    /// Of a multi-region cluster, print only this endpoint's token.
    #[arg(long, value_name = "HOST")]
    endpoint: Option<String>,
}

/// Prints the token; for a cluster set, one line per endpoint (`host
/// token`, local first), or the `--endpoint`'s token alone.
pub(crate) async fn run(args: TokenArgs) -> Result<(), Failure> {
    let cluster = cluster(&args).map_err(|e| Failure::Usage(e.to_string()))?;
    let members: Vec<&DsqlConfig> = match &args.endpoint {
        Some(host) => vec![cluster.get(host).ok_or_else(|| {
            Failure::Usage(format!(
                "--endpoint {host} is not one of the cluster's endpoints ({})",
                cluster
                    .members()
                    .iter()
                    .map(|m| m.endpoint().host())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?],
        None => cluster.members().iter().collect(),
    };
    let labelled = members.len() > 1;
    for member in members {
        let token = SigningProvider::load(member)
            .await
            .token()
            .await
            .map_err(|e| Failure::Runtime(e.to_string()))?;
        if labelled {
            println!("{} {}", member.endpoint().host(), token.expose_secret());
        } else {
            println!("{}", token.expose_secret());
        }
    }
    Ok(())
}

/// The local endpoint with the flags applied, and its peers.
fn cluster(args: &TokenArgs) -> Result<ClusterSet, dsql_auth::ConfigError> {
    if let Some(url) = &args.url {
        let parsed = ClusterSet::from_url(url)?;
        let mut cluster = ClusterSet::new(apply_flags(args, parsed.local().to_builder(), true)?);
        for peer in parsed.peers() {
            cluster = cluster.peer_config(apply_flags(args, peer.to_builder(), false)?)?;
        }
        return Ok(cluster);
    }
    ClusterSet::from_env_with(flags_over_env(args))
}

/// The user, token duration and profile flags on a member; the region
/// flag on the local one only (a peer's region is its host name's).
fn apply_flags(
    args: &TokenArgs,
    mut builder: dsql_auth::DsqlConfigBuilder,
    local: bool,
) -> Result<DsqlConfig, dsql_auth::ConfigError> {
    if local && let Some(region) = &args.region {
        builder = builder.region(region);
    }
    if let Some(user) = user(args) {
        builder = builder.user(user);
    }
    if let Some(secs) = args.expires_in {
        builder = builder.token_duration(Duration::from_secs(secs));
    }
    if let Some(profile) = &args.profile {
        builder = builder.profile(profile);
    }
    builder.build()
}

fn user(args: &TokenArgs) -> Option<String> {
    if args.admin {
        Some("admin".to_owned())
    } else {
        args.user.clone()
    }
}

/// The environment, with the flags shadowing the variables they
/// correspond to; an explicit --region replaces every region variable
/// rather than conflicting with one.
fn flags_over_env(args: &TokenArgs) -> impl Fn(&str) -> Option<OsString> + '_ {
    let user = user(args);
    let expires_in = args.expires_in.map(|secs| secs.to_string());
    let peers = (!args.peers.is_empty()).then(|| args.peers.join(","));
    move |name| {
        let flag = |value: Option<&str>| value.map(OsString::from);
        let overridden = match name {
            "CLUSTER_ENDPOINT" | "PGHOST" if args.host.is_some() => Some(flag(args.host.as_deref())),
            "REGION" | "AWS_REGION" | "AWS_DEFAULT_REGION" if args.region.is_some() => {
                Some(if name == "REGION" {
                    flag(args.region.as_deref())
                } else {
                    None
                })
            }
            "CLUSTER_USER" | "PGUSER" if user.is_some() => Some(flag(user.as_deref())),
            "TOKEN_EXPIRY_SECS" if expires_in.is_some() => Some(flag(expires_in.as_deref())),
            "AWS_PROFILE" if args.profile.is_some() => Some(flag(args.profile.as_deref())),
            "CLUSTER_PEER_ENDPOINTS" if peers.is_some() => Some(flag(peers.as_deref())),
            _ => None,
        };
        overridden.unwrap_or_else(|| std::env::var_os(name))
    }
}
