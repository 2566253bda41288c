//! A cluster set from environment variables: [`DsqlConfig::from_env`]'s for
//! the local endpoint, plus `CLUSTER_PEER_ENDPOINTS` for its peers.

use std::ffi::OsString;

use super::ClusterSet;
use crate::config::env::Env;
use crate::{ConfigError, DsqlConfig};

/// The variable listing the peers' endpoint host names.
const PEERS: &str = "CLUSTER_PEER_ENDPOINTS";

impl ClusterSet {
    /// Reads a cluster set from the environment.
    ///
    /// The local endpoint and every shared setting come from the variables
    /// [`DsqlConfig::from_env`] reads, with the same precedence;
    /// `CLUSTER_PEER_ENDPOINTS` adds the peers:
    ///
    /// | variable | what |
    /// |---|---|
    /// | `CLUSTER_ENDPOINT`, `PGHOST` | the local endpoint (host name or cluster id) |
    /// | `CLUSTER_PEER_ENDPOINTS` | the peers' full endpoint host names, separated by commas (blanks around them ignored) |
    ///
    /// Some settings belong to the local endpoint only, because they describe
    /// where this application is:
    /// - the region (`REGION`, `AWS_REGION`, `AWS_DEFAULT_REGION`): each
    ///   peer's region is read from its host name, so a peer given as a bare
    ///   cluster id is an error ([`ConfigError::PeerWithoutRegion`]);
    /// - the connect address `PGHOSTADDR` and the port (`DB_PORT`, `PGPORT`),
    ///   set for a tunnel, PrivateLink or `dsql-local` in front of the local
    ///   endpoint: peers are reached by resolving their host names, on
    ///   port 5432.
    ///
    /// For anything else, build the peers' configurations and add them with
    /// [`peer_config`](Self::peer_config), or use a URL.
    ///
    /// An empty item in the list (`a,,b`, a trailing comma) is an error; an
    /// empty or unset variable means no peers.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_with(|name| std::env::var_os(name))
    }

    /// Like [`from_env`](Self::from_env), but `Ok(None)` unless
    /// `CLUSTER_ENDPOINT` is set, as [`DsqlConfig::cluster_from_env`]. Peers
    /// without `CLUSTER_ENDPOINT` are an error ([`ConfigError::MissingHost`]):
    /// they are a cluster's configuration missing its local endpoint, not
    /// the absence of one.
    pub fn cluster_from_env() -> Result<Option<Self>, ConfigError> {
        Self::cluster_from_env_with(|name| std::env::var_os(name))
    }

    /// [`cluster_from_env`](Self::cluster_from_env) over any variable lookup.
    pub fn cluster_from_env_with(
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Option<Self>, ConfigError> {
        let env = Env(&lookup);
        if env.get("CLUSTER_ENDPOINT")?.is_none() {
            return match env.get(PEERS)? {
                Some(_) => Err(ConfigError::MissingHost),
                None => Ok(None),
            };
        }
        Self::from_env_with(lookup).map(Some)
    }

    /// [`from_env`](Self::from_env) over any variable lookup (a map in tests,
    /// a secrets store).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use dsql_auth::ClusterSet;
    ///
    /// let vars = HashMap::from([
    ///     ("CLUSTER_ENDPOINT", "abcdefghijklmnopqrstuvwxyz"),
    ///     ("REGION", "us-east-1"),
    ///     ("CLUSTER_PEER_ENDPOINTS", "zyxwvutsrqponmlkjihgfedcba.dsql.us-east-2.on.aws"),
    ///     ("CLUSTER_USER", "app"),
    /// ]);
    /// let set = ClusterSet::from_env_with(|name| vars.get(name).map(Into::into))?;
    /// assert_eq!(set.local().endpoint().host(), "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws");
    /// assert_eq!(set.peers()[0].endpoint().region(), "us-east-2");
    /// assert_eq!(set.peers()[0].user(), "app");
    /// # Ok::<(), dsql_auth::ConfigError>(())
    /// ```
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self, ConfigError> {
        let mut set = Self::new(DsqlConfig::from_env_with(&lookup)?);
        if let Some(list) = Env(&lookup).get(PEERS)? {
            for host in peer_hosts(&list)? {
                set = set.peer(host)?;
            }
        }
        Ok(set)
    }
}

/// The items of `CLUSTER_PEER_ENDPOINTS`, trimmed; an empty one is a typo.
fn peer_hosts(list: &str) -> Result<Vec<&str>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .map(|host| {
            if host.is_empty() {
                Err(ConfigError::InvalidValue {
                    name: PEERS,
                    value: list.to_owned(),
                    expected: "endpoint host names separated by commas, none of them empty",
                })
            } else {
                Ok(host)
            }
        })
        .collect()
}
