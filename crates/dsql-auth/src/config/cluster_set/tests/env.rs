//! `ClusterSet::from_env_with` and `cluster_from_env_with`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::{A, B, B_ID, C, Check, assert_error, hosts};
use crate::config::cluster_set::ClusterSet;
use crate::{ConfigError, DsqlConfig, EndpointError};

const ID: &str = "abcdefghijklmnopqrstuvwxyz";

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).map(Into::into)
}

#[test]
fn peers_come_from_their_own_variable_and_share_the_rest() {
    let set = ClusterSet::from_env_with(env(&[
        ("CLUSTER_ENDPOINT", ID),
        ("REGION", "us-east-1"),
        ("CLUSTER_PEER_ENDPOINTS", &format!(" {B} ,{}", C.to_uppercase())),
        ("CLUSTER_USER", "app"),
        ("DB_NAME", "orders"),
        ("DB_PORT", "15432"),
        ("PGHOSTADDR", "127.0.0.1"),
        ("TOKEN_EXPIRY_SECS", "30"),
        ("PGAPPNAME", "billing"),
    ]))
    .unwrap();
    assert_eq!(hosts(&set), [A, B, C]);
    let local = set.local();
    assert_eq!(local.endpoint().region(), "us-east-1");
    assert_eq!(
        (local.port(), local.hostaddr()),
        (15432, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))
    );
    // REGION, the port and PGHOSTADDR are the local endpoint's; each peer's
    // region is in its name, and its name is resolved.
    for (peer, region) in set.peers().iter().zip(["us-east-2", "eu-west-1"]) {
        assert_eq!(peer.endpoint().region(), region);
        assert_eq!((peer.port(), peer.hostaddr()), (5432, None));
        assert_eq!((peer.user(), peer.database()), ("app", "orders"));
        assert_eq!(peer.token_duration(), Duration::from_secs(30));
        assert_eq!(peer.application_name(), Some("billing"));
    }
}

#[test]
fn without_peers_a_set_is_what_dsql_config_reads() {
    for peers in [None, Some("")] {
        let mut vars = vec![("CLUSTER_ENDPOINT", A), ("PGUSER", "reader")];
        vars.extend(peers.map(|p| ("CLUSTER_PEER_ENDPOINTS", p)));
        let set = ClusterSet::from_env_with(env(&vars)).unwrap();
        assert_eq!(
            set,
            ClusterSet::new(DsqlConfig::from_env_with(env(&vars)).unwrap())
        );
    }
}

#[test]
fn only_cluster_endpoint_configures_a_cluster() {
    let none: &[(&str, &str)] = &[];
    assert_eq!(ClusterSet::cluster_from_env_with(env(none)).unwrap(), None);
    let stray = env(&[("PGHOST", "/var/run/postgresql"), ("PGUSER", "postgres")]);
    assert_eq!(ClusterSet::cluster_from_env_with(stray).unwrap(), None);

    // Peers without their local endpoint are a broken configuration.
    let orphans = env(&[("PGHOST", A), ("CLUSTER_PEER_ENDPOINTS", B)]);
    let err = ClusterSet::cluster_from_env_with(orphans).unwrap_err();
    assert_error(
        "peers only",
        &err,
        |e| matches!(e, ConfigError::MissingHost),
        "CLUSTER_ENDPOINT",
    );

    let set =
        ClusterSet::cluster_from_env_with(env(&[("CLUSTER_ENDPOINT", A), ("CLUSTER_PEER_ENDPOINTS", B)]))
            .unwrap()
            .unwrap();
    assert_eq!(hosts(&set), [A, B]);
}

type EnvCase<'a> = (&'a str, Check, &'a str);

#[test]
fn bad_peer_lists_are_typed_and_named() {
    let both = format!("{B},{C}");
    let cases: &[EnvCase<'_>] = &[
        (
            &format!("{B},,{C}"),
            |e| {
                matches!(
                    e,
                    ConfigError::InvalidValue {
                        name: "CLUSTER_PEER_ENDPOINTS",
                        ..
                    }
                )
            },
            "none of them empty",
        ),
        (
            &format!("{B},"),
            |e| {
                matches!(
                    e,
                    ConfigError::InvalidValue {
                        name: "CLUSTER_PEER_ENDPOINTS",
                        ..
                    }
                )
            },
            "CLUSTER_PEER_ENDPOINTS",
        ),
        (
            " , ",
            |e| {
                matches!(
                    e,
                    ConfigError::InvalidValue {
                        name: "CLUSTER_PEER_ENDPOINTS",
                        ..
                    }
                )
            },
            "separated by commas",
        ),
        // REGION is the local endpoint's: it never makes a cluster id a peer.
        (B_ID, |e| matches!(e, ConfigError::PeerWithoutRegion { .. }), B_ID),
        (A, |e| matches!(e, ConfigError::DuplicateHost { .. }), A),
        (
            &format!("{both},{B}"),
            |e| matches!(e, ConfigError::DuplicateHost { .. }),
            B,
        ),
        (
            "peer host",
            |e| matches!(e, ConfigError::Endpoint(EndpointError::InvalidCharacter { .. })),
            "peer host",
        ),
    ];
    for (peers, check, needle) in cases {
        let vars = [
            ("CLUSTER_ENDPOINT", ID),
            ("REGION", "us-east-1"),
            ("CLUSTER_PEER_ENDPOINTS", *peers),
        ];
        let err = ClusterSet::from_env_with(env(&vars)).unwrap_err();
        assert_error(peers, &err, *check, needle);
    }
}

#[test]
fn the_local_endpoint_is_checked_first() {
    let err = ClusterSet::from_env_with(env(&[("CLUSTER_ENDPOINT", ID), ("CLUSTER_PEER_ENDPOINTS", B)]))
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::Endpoint(EndpointError::MissingRegion { .. })),
        "{err:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_peer_list_must_be_unicode() {
    use std::os::unix::ffi::OsStringExt;

    let lookup = |name: &str| match name {
        "CLUSTER_ENDPOINT" => Some(OsString::from(A)),
        "CLUSTER_PEER_ENDPOINTS" => Some(OsString::from_vec(vec![0xff])),
        _ => None,
    };
    let err = ClusterSet::from_env_with(lookup).unwrap_err();
    assert_eq!(
        err,
        ConfigError::NotUnicode {
            name: "CLUSTER_PEER_ENDPOINTS"
        }
    );
}
