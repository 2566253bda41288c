//! [`ClusterSet`]: the endpoints of a multi-region cluster, local first.

mod env;
mod url;

use std::fmt;
use std::str::FromStr;

use super::{ConfigError, DEFAULT_PORT, DsqlConfig};
use crate::{Endpoint, EndpointError};

/// The endpoints of a multi-region cluster: the local one first, then its
/// peers, each a complete [`DsqlConfig`].
///
/// A multi-region cluster is two peered clusters in two regions, each with
/// its own cluster id and endpoint host `<cluster-id>.dsql.<region>.on.aws`
/// (the witness region has no endpoint, and is no member). A token is bound
/// to one endpoint host, so each member needs its own token provider: build
/// one from each member's config.
///
/// Members share the user, database, token duration, TLS settings
/// (`sslrootcert`, `sslnegotiation`), application name, profile and connect
/// timeout of the local one; they differ in endpoint (host, and the region
/// read from the host name), port and connect address (`hostaddr`). A peer
/// added with [`peer_config`](Self::peer_config) keeps its own settings,
/// except user and database, which must agree. The set is never empty, and
/// no host is in it twice.
///
/// Build one with [`new`](Self::new) and [`peer`](Self::peer), from the
/// environment ([`from_env`](Self::from_env), `CLUSTER_PEER_ENDPOINTS`) or
/// from a libpq multi-host URL ([`from_url`](Self::from_url)).
///
/// ```
/// use dsql_auth::{ClusterSet, DsqlConfig};
///
/// let local = DsqlConfig::builder()
///     .host("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws")
///     .user("app")
///     .build()?;
/// let set = ClusterSet::new(local).peer("zyxwvutsrqponmlkjihgfedcba.dsql.us-east-2.on.aws")?;
/// assert_eq!(set.len(), 2);
/// assert_eq!(set.local().endpoint().region(), "us-east-1");
/// let peer = &set.peers()[0];
/// assert_eq!((peer.endpoint().region(), peer.user()), ("us-east-2", "app"));
///
/// // Or from a libpq multi-host URL, the local host first.
/// let same: ClusterSet = "postgres://app@abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws,\
///                         zyxwvutsrqponmlkjihgfedcba.dsql.us-east-2.on.aws/postgres"
///     .parse()?;
/// assert_eq!(same, set);
/// # Ok::<(), dsql_auth::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSet {
    /// Never empty; hosts distinct (they are normalized to lowercase).
    members: Vec<DsqlConfig>,
}

impl ClusterSet {
    /// A set of one member, the local endpoint.
    pub fn new(local: DsqlConfig) -> Self {
        Self { members: vec![local] }
    }

    /// Adds a peer on the local member's settings, at `host`, the peer's full
    /// endpoint host name, on port 5432 and without a connect address.
    ///
    /// The peer's region is read from `host`: a bare cluster id or a custom
    /// host name is refused ([`ConfigError::PeerWithoutRegion`]), since its
    /// region would be a guess. Use [`peer_config`](Self::peer_config) for
    /// those, or for another port or a connect address.
    ///
    /// ```
    /// use dsql_auth::{ClusterSet, ConfigError, DsqlConfig};
    ///
    /// let local = DsqlConfig::builder().host("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws").build()?;
    /// let err = ClusterSet::new(local).peer("zyxwvutsrqponmlkjihgfedcba").unwrap_err();
    /// assert!(matches!(err, ConfigError::PeerWithoutRegion { .. }));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn peer(self, host: &str) -> Result<Self, ConfigError> {
        let endpoint = peer_endpoint(host)?;
        let peer = self.local().with_endpoint(endpoint, DEFAULT_PORT, None);
        self.push(peer)
    }

    /// Adds a peer given as its own configuration. It must agree with the
    /// local member on user and database ([`ConfigError::PeerMismatch`]
    /// names the setting), and its host must be new
    /// ([`ConfigError::DuplicateHost`]); its other settings are its own.
    pub fn peer_config(self, config: DsqlConfig) -> Result<Self, ConfigError> {
        let local = self.local();
        let shared = [
            ("user", local.user(), config.user()),
            ("database", local.database(), config.database()),
        ];
        for (field, local, peer) in shared {
            if local != peer {
                return Err(ConfigError::PeerMismatch {
                    host: config.endpoint().host().to_owned(),
                    field,
                    local: local.to_owned(),
                    peer: peer.to_owned(),
                });
            }
        }
        self.push(config)
    }

    /// The local member: the endpoint in this application's region.
    pub fn local(&self) -> &DsqlConfig {
        // `new` puts the local member first, and nothing removes members.
        self.members
            .first()
            .unwrap_or_else(|| unreachable!("a cluster set is never empty"))
    }

    /// The peers, in the order they were given.
    pub fn peers(&self) -> &[DsqlConfig] {
        self.members.get(1..).unwrap_or_default()
    }

    /// Every member, the local one first.
    pub fn members(&self) -> &[DsqlConfig] {
        &self.members
    }

    /// How many members the set has (at least one).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always `false`: a set has its local member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member whose endpoint host is `host` (case-insensitive, a
    /// trailing dot ignored).
    pub fn get(&self, host: &str) -> Option<&DsqlConfig> {
        let host = host.strip_suffix('.').unwrap_or(host);
        self.members
            .iter()
            .find(|member| member.endpoint().host().eq_ignore_ascii_case(host))
    }

    /// Adds `member` if its host is new.
    fn push(mut self, member: DsqlConfig) -> Result<Self, ConfigError> {
        let host = member.endpoint().host();
        if self.get(host).is_some() {
            return Err(ConfigError::DuplicateHost {
                host: host.to_owned(),
            });
        }
        self.members.push(member);
        Ok(self)
    }
}

/// The endpoint of a peer given by name: an AWS endpoint host name, whose
/// region is in the name.
fn peer_endpoint(host: &str) -> Result<Endpoint, ConfigError> {
    Endpoint::parse(host, None).map_err(|e| match e {
        EndpointError::MissingRegion { .. } => ConfigError::PeerWithoutRegion {
            host: host.to_owned(),
        },
        other => other.into(),
    })
}

impl fmt::Debug for ClusterSet {
    /// The hosts; each member's settings are in its own `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let peers: Vec<&str> = self.peers().iter().map(|peer| peer.endpoint().host()).collect();
        f.debug_struct("ClusterSet")
            .field("local", &self.local().endpoint().host())
            .field("peers", &peers)
            .finish()
    }
}

impl FromStr for ClusterSet {
    type Err = ConfigError;

    /// Parses a connection URL with one or several hosts; see
    /// [`ClusterSet::from_url`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_url(s)
    }
}

#[cfg(test)]
mod tests;
