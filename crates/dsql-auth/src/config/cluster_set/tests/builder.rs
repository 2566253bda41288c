//! `ClusterSet::new`, `peer`, `peer_config` and the accessors.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use super::{A, B, B_ID, C, Check, assert_error, hosts, local};
use crate::config::cluster_set::ClusterSet;
use crate::{ConfigError, DsqlConfig, EndpointError, SslNegotiation};

#[test]
fn a_new_set_is_its_local_member() {
    let set = ClusterSet::new(local());
    assert_eq!((set.len(), set.is_empty()), (1, false));
    assert_eq!(set.local(), &local());
    assert_eq!(set.members(), [local()]);
    assert!(set.peers().is_empty());
    assert_eq!(set.get(A), Some(&local()));
    assert_eq!(set.get(B), None);
}

#[test]
fn a_peer_shares_every_setting_but_where_it_is() {
    let local = DsqlConfig::builder()
        .host(A)
        .user("app")
        .database("orders")
        .port(15432)
        .hostaddr(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .token_duration(Duration::from_secs(300))
        .connect_timeout(Duration::from_secs(4))
        .application_name("billing")
        .profile("prod")
        .ssl_root_cert("/etc/ca.pem")
        .ssl_negotiation(SslNegotiation::Direct)
        .build()
        .unwrap();
    let set = ClusterSet::new(local.clone()).peer(B).unwrap().peer(C).unwrap();
    assert_eq!(hosts(&set), [A, B, C]);
    assert_eq!(set.local(), &local);
    for (peer, region) in set.peers().iter().zip(["us-east-2", "eu-west-1"]) {
        assert_eq!(peer.endpoint().region(), region);
        // Where the local endpoint is reached is its own.
        assert_eq!((peer.port(), peer.hostaddr()), (5432, None));
        assert_eq!((peer.user(), peer.database()), ("app", "orders"));
        assert_eq!(peer.token_duration(), Duration::from_secs(300));
        assert_eq!(peer.connect_timeout(), Some(Duration::from_secs(4)));
        assert_eq!(peer.application_name(), Some("billing"));
        assert_eq!(peer.profile(), Some("prod"));
        assert_eq!(peer.ssl_root_cert(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(peer.ssl_negotiation(), SslNegotiation::Direct);
    }
}

#[test]
fn a_peer_is_named_by_its_full_host_name() {
    // Case and a trailing dot are a host name's spelling, not another host.
    let set = ClusterSet::new(local())
        .peer(&format!("{}.", B.to_uppercase()))
        .unwrap();
    assert_eq!(hosts(&set), [A, B]);

    let cases: &[(&str, Check, &str)] = &[
        (B_ID, |e| matches!(e, ConfigError::PeerWithoutRegion { .. }), B_ID),
        (
            "ZYXWVUTSRQPONMLKJIHGFEDCBA",
            |e| matches!(e, ConfigError::PeerWithoutRegion { .. }),
            "full endpoint host name",
        ),
        (
            "localhost",
            |e| matches!(e, ConfigError::PeerWithoutRegion { .. }),
            "`localhost` has no region",
        ),
        (
            "db.internal.example.com",
            |e| matches!(e, ConfigError::PeerWithoutRegion { .. }),
            "db.internal",
        ),
        (
            "bad host",
            |e| matches!(e, ConfigError::Endpoint(EndpointError::InvalidCharacter { .. })),
            "bad host",
        ),
        (
            "x.dsql.us-east-2.on.aws",
            |e| matches!(e, ConfigError::Endpoint(EndpointError::InvalidClusterId { .. })),
            "`x` is not a DSQL cluster id",
        ),
        (
            "",
            |e| matches!(e, ConfigError::Endpoint(EndpointError::Empty)),
            "empty",
        ),
    ];
    for (host, check, needle) in cases {
        let err = ClusterSet::new(local()).peer(host).unwrap_err();
        assert_error(host, &err, *check, needle);
    }
}

#[test]
fn a_host_is_in_a_set_once() {
    let duplicate: Check = |e| matches!(e, ConfigError::DuplicateHost { host } if host == B);
    let set = ClusterSet::new(local()).peer(B).unwrap();
    let err = set.clone().peer(&B.to_uppercase()).unwrap_err();
    assert_error("peer twice", &err, duplicate, "is in the cluster set twice");

    let err = ClusterSet::new(local()).peer(A).unwrap_err();
    assert_error(
        "the local host as a peer",
        &err,
        |e| matches!(e, ConfigError::DuplicateHost { .. }),
        A,
    );

    // Another port is not another endpoint: the token is bound to the host.
    let other_port = DsqlConfig::builder().host(B).port(6543).build().unwrap();
    let err = set.peer_config(other_port).unwrap_err();
    assert_error("same host, other port", &err, duplicate, B);
}

#[test]
fn a_peer_config_keeps_its_own_settings_but_user_and_database() {
    let peer = DsqlConfig::builder()
        .host(B)
        .port(6543)
        .hostaddr(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)))
        .token_duration(Duration::from_secs(60))
        .build()
        .unwrap();
    let set = ClusterSet::new(local()).peer_config(peer.clone()).unwrap();
    assert_eq!(set.peers(), [peer]);

    let other_user = DsqlConfig::builder().host(B).user("reader").build().unwrap();
    let err = ClusterSet::new(local()).peer_config(other_user).unwrap_err();
    assert_error(
        "user",
        &err,
        |e| matches!(e, ConfigError::PeerMismatch { field: "user", .. }),
        &format!("the peer `{B}` has user `reader` but the local endpoint has user `admin`"),
    );
    let other_database = DsqlConfig::builder().host(B).database("orders").build().unwrap();
    let err = ClusterSet::new(local()).peer_config(other_database).unwrap_err();
    assert_error(
        "database",
        &err,
        |e| {
            matches!(
                e,
                ConfigError::PeerMismatch {
                    field: "database",
                    ..
                }
            )
        },
        "database `orders` but the local endpoint has database `postgres`",
    );
}

#[test]
fn members_are_found_by_host_whatever_its_case() {
    let set = ClusterSet::new(local()).peer(B).unwrap();
    assert_eq!(
        set.get(&B.to_uppercase()).map(|m| m.endpoint().region()),
        Some("us-east-2")
    );
    assert_eq!(set.get(&format!("{A}.")), Some(set.local()));
    assert_eq!(set.get(C), None);
    assert_eq!(set.get(""), None);
    assert_eq!(set.members().len(), set.len());
}

#[test]
fn debug_lists_the_hosts() {
    let set = ClusterSet::new(local()).peer(B).unwrap().peer(C).unwrap();
    assert_eq!(
        format!("{set:?}"),
        format!("ClusterSet {{ local: {A:?}, peers: [{B:?}, {C:?}] }}")
    );
}
