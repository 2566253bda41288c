//! `DsqlConfig` from the builder, the environment and URLs: table-driven.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dsql_auth::{Action, ConfigError, DsqlConfig, EndpointError, SslNegotiation};

const HOST: &str = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws";
const ID: &str = "abcdefghijklmnopqrstuvwxyz";

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).map(Into::into)
}

#[test]
fn defaults() {
    let config = DsqlConfig::builder().host(HOST).build().unwrap();
    assert_eq!(config.user(), "admin");
    assert_eq!(config.action(), Action::DbConnectAdmin);
    assert_eq!(config.database(), "postgres");
    assert_eq!(config.port(), 5432);
    assert_eq!(config.token_duration(), Duration::from_secs(900));
    assert_eq!(config.ssl_negotiation(), SslNegotiation::Postgres);
    assert_eq!(config.endpoint().region(), "us-east-1");
    assert!(config.hostaddr().is_none());
}

#[test]
fn environment_of_the_aws_manual_token_example() {
    let config = DsqlConfig::from_env_with(env(&[
        ("CLUSTER_ENDPOINT", ID),
        ("CLUSTER_USER", "app"),
        ("REGION", "eu-central-1"),
        ("DB_PORT", "6543"),
        ("DB_NAME", "orders"),
        ("TOKEN_EXPIRY_SECS", "30"),
        ("AWS_PROFILE", "prod"),
        ("PGHOSTADDR", "127.0.0.1"),
        ("PGAPPNAME", "billing"),
        ("PGCONNECT_TIMEOUT", "7"),
    ]))
    .unwrap();
    assert_eq!(config.endpoint().host(), format!("{ID}.dsql.eu-central-1.on.aws"));
    assert_eq!(config.user(), "app");
    assert_eq!(config.action(), Action::DbConnect);
    assert_eq!(config.port(), 6543);
    assert_eq!(config.database(), "orders");
    assert_eq!(config.token_duration(), Duration::from_secs(30));
    assert_eq!(config.profile(), Some("prod"));
    assert_eq!(config.hostaddr(), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(config.application_name(), Some("billing"));
    assert_eq!(config.connect_timeout(), Some(Duration::from_secs(7)));
}

#[test]
fn cluster_variables_beat_libpq_variables() {
    let config = DsqlConfig::from_env_with(env(&[
        ("CLUSTER_ENDPOINT", HOST),
        ("PGHOST", "db.example.com"),
        ("CLUSTER_USER", "app"),
        ("PGUSER", "postgres"),
        ("DB_PORT", "5433"),
        ("PGPORT", "5434"),
        ("DB_NAME", "a"),
        ("PGDATABASE", "b"),
    ]))
    .unwrap();
    assert_eq!(config.endpoint().host(), HOST);
    assert_eq!(
        (config.user(), config.port(), config.database()),
        ("app", 5433, "a")
    );

    // libpq variables fill gaps; empty variables count as unset.
    let config = DsqlConfig::from_env_with(env(&[
        ("CLUSTER_ENDPOINT", ""),
        ("PGHOST", HOST),
        ("PGUSER", "reader"),
        ("AWS_REGION", "us-east-1"),
    ]))
    .unwrap();
    assert_eq!((config.endpoint().host(), config.user()), (HOST, "reader"));
}

#[test]
fn only_cluster_endpoint_configures_a_cluster() {
    let stray = env(&[("PGHOST", "/var/run/postgresql"), ("PGUSER", "postgres")]);
    assert_eq!(DsqlConfig::cluster_from_env_with(stray).unwrap(), None);
    let set = env(&[("CLUSTER_ENDPOINT", HOST)]);
    assert!(DsqlConfig::cluster_from_env_with(set).unwrap().is_some());
}

#[test]
fn region_sources() {
    let from_aws = DsqlConfig::from_env_with(env(&[
        ("CLUSTER_ENDPOINT", ID),
        ("AWS_DEFAULT_REGION", "ap-south-1"),
    ]))
    .unwrap();
    assert_eq!(from_aws.endpoint().region(), "ap-south-1");
    let agree = DsqlConfig::from_env_with(env(&[
        ("CLUSTER_ENDPOINT", ID),
        ("REGION", "us-west-2"),
        ("AWS_REGION", "us-west-2"),
    ]))
    .unwrap();
    assert_eq!(agree.endpoint().region(), "us-west-2");
}

type Check = fn(&ConfigError) -> bool;
type EnvCase<'a> = (&'a [(&'a str, &'a str)], Check, &'a str);

#[test]
fn bad_environments_are_typed_and_named() {
    let cases: &[EnvCase<'_>] = &[
        (&[], |e| matches!(e, ConfigError::MissingHost), "CLUSTER_ENDPOINT"),
        (
            &[
                ("CLUSTER_ENDPOINT", ID),
                ("REGION", "us-east-1"),
                ("AWS_REGION", "eu-west-1"),
            ],
            |e| matches!(e, ConfigError::RegionConflict { .. }),
            "REGION is `us-east-1` but AWS_REGION is `eu-west-1`",
        ),
        (
            &[("CLUSTER_ENDPOINT", HOST), ("REGION", "eu-west-1")],
            |e| matches!(e, ConfigError::Endpoint(EndpointError::RegionConflict { .. })),
            "region conflict",
        ),
        (
            &[("CLUSTER_ENDPOINT", ID)],
            |e| matches!(e, ConfigError::Endpoint(EndpointError::MissingRegion { .. })),
            "needs an explicit region",
        ),
        (
            &[("CLUSTER_ENDPOINT", HOST), ("DB_PORT", "http")],
            |e| matches!(e, ConfigError::InvalidValue { name: "DB_PORT", .. }),
            "DB_PORT `http`",
        ),
        (
            &[("CLUSTER_ENDPOINT", HOST), ("PGPORT", "70000")],
            |e| matches!(e, ConfigError::InvalidValue { name: "PGPORT", .. }),
            "PGPORT",
        ),
        (
            &[("CLUSTER_ENDPOINT", HOST), ("TOKEN_EXPIRY_SECS", "0")],
            |e| matches!(e, ConfigError::TokenDurationOutOfRange { secs: 0 }),
            "1 to 604800",
        ),
        (
            &[("CLUSTER_ENDPOINT", HOST), ("TOKEN_EXPIRY_SECS", "604801")],
            |e| matches!(e, ConfigError::TokenDurationOutOfRange { secs: 604_801 }),
            "604801",
        ),
        (
            &[("CLUSTER_ENDPOINT", HOST), ("TOKEN_EXPIRY_SECS", "15m")],
            |e| {
                matches!(
                    e,
                    ConfigError::InvalidValue {
                        name: "TOKEN_EXPIRY_SECS",
                        ..
                    }
                )
            },
            "TOKEN_EXPIRY_SECS",
        ),
        (
            &[("CLUSTER_ENDPOINT", HOST), ("PGHOSTADDR", "localhost")],
            |e| {
                matches!(
                    e,
                    ConfigError::InvalidValue {
                        name: "PGHOSTADDR",
                        ..
                    }
                )
            },
            "an IP address",
        ),
        (
            &[("CLUSTER_ENDPOINT", "bad host")],
            |e| matches!(e, ConfigError::Endpoint(EndpointError::InvalidCharacter { .. })),
            "bad host",
        ),
    ];
    for (vars, check, needle) in cases {
        let err = DsqlConfig::from_env_with(env(vars)).unwrap_err();
        assert!(check(&err), "{vars:?}: unexpected {err:?}");
        assert!(
            err.to_string().contains(needle),
            "{vars:?}: {err} does not name {needle:?}"
        );
    }
}

#[test]
fn urls() {
    let config = DsqlConfig::from_url(&format!(
        "postgres://app%40team@{HOST}:6543/my%20db?tokenDurationSecs=120&applicationName=api&sslmode=verify-full\
         &sslnegotiation=direct&sslrootcert=/etc/ca.pem&hostaddr=10.0.0.5&connect_timeout=3&profile=dev&region=us-east-1"
    ))
    .unwrap();
    assert_eq!(config.user(), "app@team");
    assert_eq!(config.database(), "my db");
    assert_eq!(config.port(), 6543);
    assert_eq!(config.token_duration(), Duration::from_secs(120));
    assert_eq!(config.application_name(), Some("api"));
    assert_eq!(config.ssl_negotiation(), SslNegotiation::Direct);
    assert_eq!(config.ssl_root_cert().unwrap().to_str(), Some("/etc/ca.pem"));
    assert_eq!(config.hostaddr(), Some("10.0.0.5".parse().unwrap()));
    assert_eq!(config.connect_timeout(), Some(Duration::from_secs(3)));
    assert_eq!(config.profile(), Some("dev"));

    for scheme in ["postgresql", "dsql"] {
        let config = DsqlConfig::from_url(&format!("{scheme}://{ID}.dsql.eu-west-1.on.aws")).unwrap();
        assert_eq!(
            (config.user(), config.database(), config.port()),
            ("admin", "postgres", 5432)
        );
        assert_eq!(config.endpoint().region(), "eu-west-1");
    }
    let bare =
        DsqlConfig::from_url(&format!("dsql://reader@{ID}?region=us-west-2&application_name=x")).unwrap();
    assert_eq!(bare.endpoint().host(), format!("{ID}.dsql.us-west-2.on.aws"));
    assert_eq!(bare.action(), Action::DbConnect);
}

#[test]
fn bad_urls_are_typed_and_named() {
    let cases: &[(&str, Check, &str)] = &[
        (
            "not a url",
            |e| matches!(e, ConfigError::InvalidUrl { .. }),
            "invalid connection URL",
        ),
        (
            "mysql://admin@host",
            |e| matches!(e, ConfigError::UnsupportedScheme { .. }),
            "`mysql`",
        ),
        (
            "postgres://admin:hunter2@HOST",
            |e| matches!(e, ConfigError::PasswordInUrl),
            "contains a password",
        ),
        (
            "postgres://admin@HOST?password=hunter2",
            |e| matches!(e, ConfigError::PasswordInUrl),
            "contains a password",
        ),
        (
            "postgres://admin@HOST?sslcert=/x",
            |e| matches!(e, ConfigError::UnknownParameter { name } if name == "sslcert"),
            "`sslcert`",
        ),
        (
            "postgres://admin@HOST?region=us-east-1&region=us-east-1",
            |e| matches!(e, ConfigError::DuplicateParameter { .. }),
            "`region` is given more than once",
        ),
        (
            "postgres://admin@HOST?sslmode=require",
            |e| matches!(e, ConfigError::UnsupportedSslMode { .. }),
            "sslmode `require`",
        ),
        (
            "postgres://admin@HOST?sslnegotiation=fast",
            |e| {
                matches!(
                    e,
                    ConfigError::InvalidValue {
                        name: "sslnegotiation",
                        ..
                    }
                )
            },
            "sslnegotiation `fast`",
        ),
        (
            "postgres://admin@HOST?tokenDurationSecs=999999",
            |e| matches!(e, ConfigError::TokenDurationOutOfRange { secs: 999_999 }),
            "out of range",
        ),
        (
            "postgres://admin@HOST?tokenDurationSecs=soon",
            |e| {
                matches!(
                    e,
                    ConfigError::InvalidValue {
                        name: "tokenDurationSecs",
                        ..
                    }
                )
            },
            "tokenDurationSecs `soon`",
        ),
        (
            "postgres://admin@HOST?connect_timeout=-1",
            |e| {
                matches!(
                    e,
                    ConfigError::InvalidValue {
                        name: "connect_timeout",
                        ..
                    }
                )
            },
            "connect_timeout",
        ),
        (
            "postgres://admin@HOST?hostaddr=db.local",
            |e| matches!(e, ConfigError::InvalidValue { name: "hostaddr", .. }),
            "hostaddr `db.local`",
        ),
        (
            "postgres://admin@HOST?region=eu-west-1",
            |e| matches!(e, ConfigError::Endpoint(EndpointError::RegionConflict { .. })),
            "eu-west-1",
        ),
        (
            "postgres:///postgres",
            |e| matches!(e, ConfigError::MissingHost),
            "no DSQL endpoint",
        ),
        (
            "postgres://admin@HOST:0/postgres",
            |e| matches!(e, ConfigError::InvalidValue { name: "port", .. }),
            "port",
        ),
        (
            "postgres://admin@HOST:99999/postgres",
            |e| matches!(e, ConfigError::InvalidUrl { .. }),
            "port",
        ),
        (
            "postgres://admin@HOST/a/b",
            |e| matches!(e, ConfigError::InvalidUrl { .. }),
            "single database name",
        ),
        (
            "postgres://admin@x.dsql.us-east-1.on.aws",
            |e| matches!(e, ConfigError::Endpoint(EndpointError::InvalidClusterId { .. })),
            "`x` is not a DSQL cluster id",
        ),
        (
            "postgres://admin@HOST/postgres#frag",
            |e| matches!(e, ConfigError::InvalidUrl { .. }),
            "fragment",
        ),
    ];
    for (url, check, needle) in cases {
        let url = url.replace("HOST", HOST);
        let err = DsqlConfig::from_url(&url).unwrap_err();
        assert!(check(&err), "{url}: unexpected {err:?}");
        let message = err.to_string();
        assert!(
            message.contains(needle),
            "{url}: {message} does not name {needle:?}"
        );
        assert!(
            !message.contains("hunter2"),
            "{url}: password leaked into {message}"
        );
        assert!(
            !format!("{err:?}").contains("hunter2"),
            "{url}: password leaked into Debug"
        );
    }
}

#[test]
fn builder_rejects_bad_values() {
    let err = DsqlConfig::builder().build().unwrap_err();
    assert_eq!(err, ConfigError::MissingHost);
    let err = DsqlConfig::builder().host(HOST).user("").build().unwrap_err();
    assert!(
        matches!(err, ConfigError::InvalidValue { name: "user", .. }),
        "{err:?}"
    );
    let err = DsqlConfig::builder()
        .host(HOST)
        .database("a\0b")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("NUL"), "{err}");
    let err = DsqlConfig::builder()
        .host(HOST)
        .token_duration(Duration::from_millis(500))
        .build()
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::TokenDurationOutOfRange { secs: 0 }),
        "{err:?}"
    );

    let config = DsqlConfig::builder().host(HOST).build().unwrap();
    let changed = config.to_builder().user("reader").port(6000).build().unwrap();
    assert_eq!(
        (changed.user(), changed.port(), changed.endpoint()),
        ("reader", 6000, config.endpoint())
    );
}

/// libpq reads `connect_timeout=0` and `PGCONNECT_TIMEOUT=0` as "no
/// timeout": both parse to `Some(Duration::ZERO)`, which the connect stack
/// honours as such; unset stays `None`.
#[test]
fn a_zero_connect_timeout_means_no_timeout() {
    let config = DsqlConfig::from_url(&format!("postgres://admin@{HOST}?connect_timeout=0")).unwrap();
    assert_eq!(config.connect_timeout(), Some(Duration::ZERO));
    let config = DsqlConfig::from_url(&format!("postgres://admin@{HOST}?connect_timeout=%200%20")).unwrap();
    assert_eq!(config.connect_timeout(), Some(Duration::ZERO));
    let config = DsqlConfig::from_url(&format!("postgres://admin@{HOST}")).unwrap();
    assert_eq!(config.connect_timeout(), None);

    let config =
        DsqlConfig::from_env_with(env(&[("CLUSTER_ENDPOINT", HOST), ("PGCONNECT_TIMEOUT", "0")])).unwrap();
    assert_eq!(config.connect_timeout(), Some(Duration::ZERO));
    let config = DsqlConfig::from_env_with(env(&[("CLUSTER_ENDPOINT", HOST)])).unwrap();
    assert_eq!(config.connect_timeout(), None);

    let config = DsqlConfig::builder()
        .host(HOST)
        .connect_timeout(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(config.connect_timeout(), Some(Duration::ZERO));
    assert_eq!(
        config.to_builder().build().unwrap().connect_timeout(),
        Some(Duration::ZERO)
    );
}
