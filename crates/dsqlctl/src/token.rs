//! `dsqlctl token`.

use std::ffi::OsString;
use std::time::Duration;

use clap::Args;
use dsql_auth::{DsqlConfig, SigningProvider, TokenProvider};

use crate::Failure;

/// Where the endpoint comes from: `--url`, `--host`, or the environment
/// (`CLUSTER_ENDPOINT`, `REGION`, `CLUSTER_USER`, … as in AWS's examples).
/// Flags override the environment.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[arg(
        long,
        conflicts_with = "host",
        help = "Connection URL: postgres://user@host[:port]/db?region=…&tokenDurationSecs=…"
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
}

pub(crate) async fn run(args: TokenArgs) -> Result<(), Failure> {
    let config = config(&args).map_err(|e| Failure::Usage(e.to_string()))?;
    let provider = SigningProvider::load(&config).await;
    let token = provider
        .token()
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    println!("{}", token.expose_secret());
    Ok(())
}

fn config(args: &TokenArgs) -> Result<DsqlConfig, dsql_auth::ConfigError> {
    let user = if args.admin {
        Some("admin".to_owned())
    } else {
        args.user.clone()
    };
    if let Some(url) = &args.url {
        let mut builder = DsqlConfig::from_url(url)?.to_builder();
        if let Some(region) = &args.region {
            builder = builder.region(region);
        }
        if let Some(user) = user {
            builder = builder.user(user);
        }
        if let Some(secs) = args.expires_in {
            builder = builder.token_duration(Duration::from_secs(secs));
        }
        if let Some(profile) = &args.profile {
            builder = builder.profile(profile);
        }
        return builder.build();
    }
    // Flags shadow the environment variables they correspond to; an explicit
    // --region replaces every region variable rather than conflicting with one.
    let flag = |value: Option<&str>| value.map(OsString::from);
    let expires_in = args.expires_in.map(|secs| secs.to_string());
    DsqlConfig::from_env_with(|name| {
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
            _ => None,
        };
        overridden.unwrap_or_else(|| std::env::var_os(name))
    })
}
