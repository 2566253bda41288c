//! A cluster set from a libpq multi-host URL: each host becomes a one-host
//! URL that [`DsqlConfig::from_url`] reads, so every parameter means the
//! same for a set as for one endpoint.

use std::net::IpAddr;

use ::url::form_urlencoded;

use super::ClusterSet;
use crate::config::authority::{Authority, clean, host_of};
use crate::config::parse_hostaddr;
use crate::config::url::password_in_user_info;
use crate::{ConfigError, DsqlConfig, EndpointError};

impl ClusterSet {
    /// Parses a connection URL in libpq's multi-host form,
    /// `postgres://[user@]host1[:port1],host2[:port2],…[/database][?param=value&…]`,
    /// the local endpoint first (`postgresql://` and `dsql://` too).
    ///
    /// Parameters are those of [`DsqlConfig::from_url`] and apply to every
    /// member, except:
    /// - `hostaddr`, which is either absent or a comma-separated list with
    ///   one entry per host, in the hosts' order (libpq's rule); an empty
    ///   entry means that host's name is resolved, so
    ///   `hostaddr=127.0.0.1,` sends only the local endpoint to a tunnel;
    /// - `region`, which is for host names without a region in them (custom
    ///   names, a local bare cluster id): a region that contradicts a DSQL
    ///   host name is an error naming the host
    ///   ([`ConfigError::HostRegionConflict`]). A peer given as a bare
    ///   cluster id is refused ([`ConfigError::PeerWithoutRegion`]): peers
    ///   are in other regions than the local endpoint.
    ///
    /// Hosts must be distinct ([`ConfigError::DuplicateHost`]); each has its
    /// own port (default 5432). A URL with one host gives a set of one, read
    /// exactly as [`DsqlConfig::from_url`] reads it. A password anywhere is
    /// refused, and never shown.
    ///
    /// ```
    /// use dsql_auth::{ClusterSet, ConfigError};
    ///
    /// let set = ClusterSet::from_url(
    ///     "postgres://app@abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws:15432,\
    ///      zyxwvutsrqponmlkjihgfedcba.dsql.us-east-2.on.aws/orders?hostaddr=127.0.0.1,",
    /// )?;
    /// let (local, peer) = (set.local(), &set.peers()[0]);
    /// assert_eq!((local.port(), local.hostaddr()), (15432, Some([127, 0, 0, 1].into())));
    /// assert_eq!((peer.port(), peer.hostaddr()), (5432, None));
    /// assert_eq!((peer.user(), peer.database()), ("app", "orders"));
    ///
    /// let err = ClusterSet::from_url(
    ///     "postgres://abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws,\
    ///      zyxwvutsrqponmlkjihgfedcba.dsql.us-east-2.on.aws?hostaddr=127.0.0.1",
    /// )
    /// .unwrap_err();
    /// assert_eq!(err, ConfigError::HostaddrCount { hosts: 2, hostaddrs: 1 });
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let raw = clean(url);
        let raw = raw.as_ref();
        if password_in_user_info(raw) {
            return Err(ConfigError::PasswordInUrl);
        }
        let Some(authority) = Authority::split(raw).filter(|authority| authority.hosts.len() > 1) else {
            // One host, or no `scheme://`: exactly DsqlConfig's reading.
            return DsqlConfig::from_url(raw).map(Self::new);
        };
        if authority.hosts.iter().any(|item| item.is_empty()) {
            return Err(ConfigError::InvalidUrl {
                reason: "the host list has an empty item (two commas in a row, or one at an end)".to_owned(),
            });
        }
        let (tail, hostaddrs) = take_hostaddr(authority.tail);
        // Members first: the URL's own faults (`password=` among them) are
        // reported before the `hostaddr` list's.
        let members = authority
            .hosts
            .iter()
            .map(|item| member(&authority, item, &tail))
            .collect::<Result<Vec<_>, _>>()?;
        let addrs = match hostaddrs.as_slice() {
            [] => vec![None; members.len()],
            [list] => connect_addresses(list, members.len())?,
            [_, _, ..] => {
                return Err(ConfigError::DuplicateParameter {
                    name: "hostaddr".to_owned(),
                });
            }
        };

        let mut set: Option<Self> = None;
        for ((config, addr), item) in members.into_iter().zip(addrs).zip(&authority.hosts) {
            let config = config.with_endpoint(config.endpoint().clone(), config.port(), addr);
            set = Some(match set {
                None => Self::new(config),
                Some(set) => {
                    let written = host_of(item);
                    if is_bare_cluster_id(written, &config) {
                        return Err(ConfigError::PeerWithoutRegion {
                            host: written.to_owned(),
                        });
                    }
                    set.push(config)?
                }
            });
        }
        set.ok_or(ConfigError::MissingHost)
    }
}

/// The member at `item` (`host[:port]`): the URL with that host alone.
fn member(authority: &Authority<'_>, item: &str, tail: &str) -> Result<DsqlConfig, ConfigError> {
    let user_info = authority.user_info.map(|u| format!("{u}@")).unwrap_or_default();
    let url = format!("{}://{user_info}{item}{tail}", authority.scheme);
    DsqlConfig::from_url(&url).map_err(|e| match e {
        // Among several hosts, say which one.
        ConfigError::Endpoint(EndpointError::RegionConflict {
            host_region,
            explicit,
        }) => ConfigError::HostRegionConflict {
            host: host_of(item).to_owned(),
            host_region,
            region: explicit,
        },
        other => other,
    })
}

/// Whether the host written as `written` was a bare cluster id, the region
/// of which came from the URL's `region`, not from its name.
fn is_bare_cluster_id(written: &str, config: &DsqlConfig) -> bool {
    // `Endpoint::parse`'s rule: a name without a dot (but `localhost`) is a
    // cluster id.
    let written = written.strip_suffix('.').unwrap_or(written);
    config.endpoint().cluster_id().is_some() && !written.contains('.')
}

/// `tail` (path, query, fragment) without its `hostaddr` parameters, and
/// their values: each member's URL gets its own address.
fn take_hostaddr(tail: &str) -> (String, Vec<String>) {
    let (main, fragment) = tail.split_at(tail.find('#').unwrap_or(tail.len()));
    let Some((path, query)) = main.split_once('?') else {
        return (tail.to_owned(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut values = Vec::new();
    for piece in query.split('&') {
        // Decoded as the URL parser decodes query pairs.
        match form_urlencoded::parse(piece.as_bytes()).next() {
            Some((name, value)) if name == "hostaddr" => values.push(value.into_owned()),
            _ => kept.push(piece),
        }
    }
    let mut rest = path.to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    rest.push_str(fragment);
    (rest, values)
}

/// The `hostaddr` list's addresses, one per host; an empty entry resolves
/// that host's name.
fn connect_addresses(list: &str, hosts: usize) -> Result<Vec<Option<IpAddr>>, ConfigError> {
    let entries: Vec<&str> = list.split(',').collect();
    if entries.len() != hosts {
        return Err(ConfigError::HostaddrCount {
            hosts,
            hostaddrs: entries.len(),
        });
    }
    entries
        .into_iter()
        .map(|entry| match entry.trim() {
            "" => Ok(None),
            _ => parse_hostaddr("hostaddr", entry).map(Some),
        })
        .collect()
}
