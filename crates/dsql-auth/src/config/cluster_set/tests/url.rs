//! `ClusterSet::from_url`: libpq multi-host URLs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::{A, B, B_ID, C, Check, assert_error, hosts};
use crate::config::cluster_set::ClusterSet;
use crate::{ConfigError, DsqlConfig, EndpointError, SslNegotiation};

#[test]
fn each_host_has_its_port_and_address_and_shares_the_rest() {
    let set = ClusterSet::from_url(&format!(
        "postgres://app@{A}:15432,{}:6543,{C}/orders?tokenDurationSecs=120&hostaddr=127.0.0.1,%20,::1\
         &application_name=api&sslnegotiation=direct&connect_timeout=3&profile=dev",
        B.to_uppercase()
    ))
    .unwrap();
    assert_eq!(hosts(&set), [A, B, C]);
    let expect = [
        ("us-east-1", 15432, Some(IpAddr::V4(Ipv4Addr::LOCALHOST))),
        ("us-east-2", 6543, None),
        ("eu-west-1", 5432, Some(IpAddr::V6(Ipv6Addr::LOCALHOST))),
    ];
    for (member, (region, port, hostaddr)) in set.members().iter().zip(expect) {
        assert_eq!(member.endpoint().region(), region);
        assert_eq!((member.port(), member.hostaddr()), (port, hostaddr));
        assert_eq!((member.user(), member.database()), ("app", "orders"));
        assert_eq!(member.token_duration(), Duration::from_secs(120));
        assert_eq!(member.application_name(), Some("api"));
        assert_eq!(member.ssl_negotiation(), SslNegotiation::Direct);
        assert_eq!(member.connect_timeout(), Some(Duration::from_secs(3)));
        assert_eq!(member.profile(), Some("dev"));
    }
    // The same as the builder's, member for member.
    let again = ClusterSet::from_url(&format!("dsql://app@{A},{B}/orders")).unwrap();
    let local = DsqlConfig::builder()
        .host(A)
        .user("app")
        .database("orders")
        .build()
        .unwrap();
    assert_eq!(again, ClusterSet::new(local).peer(B).unwrap());
    assert_eq!(
        format!("postgresql://{A},{B}")
            .parse::<ClusterSet>()
            .map(|s| s.len()),
        Ok(2)
    );
}

#[test]
fn one_host_is_read_as_dsql_config_reads_it() {
    for url in [
        format!("postgres://reader@{A}:6543/db?hostaddr=10.0.0.5&sslmode=verify-full"),
        format!("dsql://{B_ID}?region=us-east-2"),
        format!("postgres://{A}?hostaddr="),
        format!("postgres://{A}?hostaddr=10.0.0.1,10.0.0.2"),
        format!("postgres://admin:hunter2@{A}"),
        "postgres:///postgres".to_owned(),
        "not a url".to_owned(),
    ] {
        assert_eq!(
            ClusterSet::from_url(&url),
            DsqlConfig::from_url(&url).map(ClusterSet::new),
            "{url}"
        );
    }
}

#[test]
fn region_is_for_names_without_one() {
    // dsql-local or a tunnel: custom names take the URL's region.
    let set = ClusterSet::from_url(
        "postgres://admin@localhost:15432,peer.localhost:15433/postgres?region=eu-west-1",
    )
    .unwrap();
    assert_eq!(hosts(&set), ["localhost", "peer.localhost"]);
    assert!(set.members().iter().all(|m| m.endpoint().region() == "eu-west-1"));
    assert_eq!(set.peers()[0].port(), 15433);
    // A region agreeing with every DSQL host name is harmless.
    let set = ClusterSet::from_url(&format!("postgres://{A},localhost?region=us-east-1")).unwrap();
    assert_eq!(hosts(&set), [A, "localhost"]);
}

#[test]
fn dsql_config_points_several_hosts_to_cluster_set() {
    for url in [
        format!("postgres://{A},{B}"),
        format!("postgres://admin@{A}:5432,{B}:5432/postgres"),
    ] {
        let err = DsqlConfig::from_url(&url).unwrap_err();
        assert_error(
            &url,
            &err,
            |e| matches!(e, ConfigError::InvalidUrl { .. }),
            "ClusterSet::from_url",
        );
    }
}

#[test]
fn bad_multi_host_urls_are_typed_and_named() {
    let cases: &[(&str, Check, &str)] = &[
        (
            "postgres://admin:hunter2@$A,$B/postgres",
            |e| matches!(e, ConfigError::PasswordInUrl),
            "contains a password",
        ),
        (
            "postgres://admin:hunter2@[::1]:5432,$B",
            |e| matches!(e, ConfigError::PasswordInUrl),
            "password",
        ),
        // The parser's user info runs to the last `@`.
        (
            "postgres://a@b:hunter2@$A,$B",
            |e| matches!(e, ConfigError::PasswordInUrl),
            "password",
        ),
        (
            "postgres://admin:hun?ter2@$A,$B",
            |e| matches!(e, ConfigError::PasswordInUrl),
            "password",
        ),
        (
            "postgres:/\t/admin:hunter2@$A,$B",
            |e| matches!(e, ConfigError::PasswordInUrl),
            "password",
        ),
        (
            "postgres://admin@$A,$B/postgres?password=hunter2",
            |e| matches!(e, ConfigError::PasswordInUrl),
            "password",
        ),
        (
            "postgres://admin@$A,$B/postgres?hostaddr=10.0.0.1,&password=hunter2",
            |e| matches!(e, ConfigError::PasswordInUrl),
            "password",
        ),
        (
            "postgres://$A,a.dsql.us-east-1.on.aws",
            |e| matches!(e, ConfigError::Endpoint(EndpointError::InvalidClusterId { .. })),
            "`a` is not a DSQL cluster id",
        ),
        (
            "postgres://$A,$B,$AU",
            |e| matches!(e, ConfigError::DuplicateHost { host } if host == A),
            A,
        ),
        (
            "postgres://$A:5432,$A:6543",
            |e| matches!(e, ConfigError::DuplicateHost { .. }),
            "twice",
        ),
        (
            "postgres://localhost:1,LOCALHOST:2?region=us-east-1",
            |e| matches!(e, ConfigError::DuplicateHost { .. }),
            "localhost",
        ),
        (
            "postgres://$A,$B_ID?region=us-east-1",
            |e| matches!(e, ConfigError::PeerWithoutRegion { host } if host == B_ID),
            "has no region in its name",
        ),
        (
            "postgres://$A,$B_ID.?region=us-east-1",
            |e| matches!(e, ConfigError::PeerWithoutRegion { .. }),
            B_ID,
        ),
        (
            "postgres://$A,$B?hostaddr=10.0.0.1",
            |e| {
                *e == ConfigError::HostaddrCount {
                    hosts: 2,
                    hostaddrs: 1,
                }
            },
            "one address per host",
        ),
        (
            "postgres://$A,$B?hostaddr=10.0.0.1,10.0.0.2,10.0.0.3",
            |e| {
                *e == ConfigError::HostaddrCount {
                    hosts: 2,
                    hostaddrs: 3,
                }
            },
            "hostaddr entries: 3",
        ),
        (
            "postgres://$A,$B?hostaddr=10.0.0.1,&hostaddr=,10.0.0.2",
            |e| matches!(e, ConfigError::DuplicateParameter { name } if name == "hostaddr"),
            "more than once",
        ),
        (
            "postgres://$A,$B?hostaddr=10.0.0.1,db.local",
            |e| matches!(e, ConfigError::InvalidValue { name: "hostaddr", .. }),
            "hostaddr `db.local`",
        ),
        (
            "postgres://$A,$B?region=us-east-1",
            |e| matches!(e, ConfigError::HostRegionConflict { host, .. } if host == B),
            "the host `zyxwvutsrqponmlkjihgfedcba.dsql.us-east-2.on.aws` is in `us-east-2`",
        ),
        (
            "postgres://$A,$B?region=eu-west-1",
            |e| matches!(e, ConfigError::HostRegionConflict { host, .. } if host == A),
            "remove `region=`",
        ),
        // IPv6 literals are split whole; a DSQL endpoint is a name (the
        // address goes in `hostaddr`).
        (
            "postgres://$A,[::1]:5432",
            |e| {
                matches!(
                    e,
                    ConfigError::Endpoint(EndpointError::InvalidCharacter { ch: ':', .. })
                )
            },
            "::1",
        ),
        (
            "postgres://[fe80::1]:15432,$B?region=us-east-1",
            |e| {
                matches!(
                    e,
                    ConfigError::Endpoint(EndpointError::InvalidCharacter { ch: ':', .. })
                )
            },
            "fe80::1",
        ),
        (
            "postgres://$A,,$B",
            |e| matches!(e, ConfigError::InvalidUrl { .. }),
            "empty item",
        ),
        (
            "postgres://$A,$B,/postgres",
            |e| matches!(e, ConfigError::InvalidUrl { .. }),
            "empty item",
        ),
        (
            "postgres://,",
            |e| matches!(e, ConfigError::InvalidUrl { .. }),
            "empty item",
        ),
        (
            "postgres://$A,$B:99999",
            |e| matches!(e, ConfigError::InvalidUrl { .. }),
            "port",
        ),
        (
            "postgres://$A,$B:0",
            |e| matches!(e, ConfigError::InvalidValue { name: "port", .. }),
            "port",
        ),
        (
            "postgres://$A,$B:x:1",
            |e| matches!(e, ConfigError::InvalidUrl { .. }),
            "port",
        ),
        (
            "postgres://$A,$B?sslcert=/x",
            |e| matches!(e, ConfigError::UnknownParameter { name } if name == "sslcert"),
            "`sslcert`",
        ),
        (
            "postgres://$A,$B?sslmode=require",
            |e| matches!(e, ConfigError::UnsupportedSslMode { .. }),
            "require",
        ),
        (
            "postgres://$A,$B/a/b",
            |e| matches!(e, ConfigError::InvalidUrl { .. }),
            "single database name",
        ),
        (
            "postgres://$A,$B/postgres#frag",
            |e| matches!(e, ConfigError::InvalidUrl { .. }),
            "fragment",
        ),
        (
            "mysql://$A,$B",
            |e| matches!(e, ConfigError::UnsupportedScheme { .. }),
            "`mysql`",
        ),
    ];
    for (url, check, needle) in cases {
        let url = url
            .replace("$AU", &A.to_uppercase())
            .replace("$B_ID", B_ID)
            .replace("$A", A)
            .replace("$B", B);
        let err = ClusterSet::from_url(&url).unwrap_err();
        assert_error(&url, &err, *check, needle);
    }
}
