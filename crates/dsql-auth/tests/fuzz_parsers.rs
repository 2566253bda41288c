//! Property-based fuzzing of the endpoint and URL parsers.
//!
//! Runs in CI with proptest's bounded case count (256 per property, a few
//! seconds in all). For a longer run (10 000 cases take about 30 s in a debug
//! build):
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test -p dsql-auth --test fuzz_parsers
//! ```
//!
//! Properties:
//! - [`Endpoint::parse`], [`Endpoint::cluster`], [`Endpoint::custom`] and
//!   [`DsqlConfig::from_url`] never panic, on arbitrary strings and on
//!   near-valid ones;
//! - an endpoint is normalized (lowercase, valid labels) and round-trips
//!   through its `Display` (with its region; AWS endpoints without);
//! - a URL built from valid parts parses back to those parts;
//! - every error displays a message, and an error for a URL carrying a
//!   password (user info or `password=` parameter) never contains it. The
//!   generated passwords use the characters a URL's user info allows
//!   unencoded; with an unencoded `?` the password leaked, see
//!   [`password_with_question_mark_is_not_echoed`];
//! - the same for [`ClusterSet::from_url`] on libpq multi-host URLs (IPv6
//!   literals, per-host ports, `hostaddr` lists, `@` in the user name): it
//!   never panics, never accepts or shows a password, reads a one-host URL
//!   as [`DsqlConfig::from_url`] does, and a multi-host URL built from valid
//!   parts parses back to them.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};

use dsql_auth::{CLUSTER_ID_LEN, ClusterSet, DsqlConfig, Endpoint, EndpointKind};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn cluster_id() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9]{26}",
        1 => "[A-Za-z0-9]{26}",
        1 => "[a-z0-9]{24,28}",
        1 => "[a-z0-9_.-]{20,30}",
    ]
}

fn region() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "(us|eu|ap|ca|sa|me|af|il|mx|cn)-(east|west|north|south|central|southeast|northeast|gov-west|gov-east)-[1-9]",
        1 => "[A-Za-z]{1,4}(-[a-z0-9]{0,6}){1,3}",
        1 => " ?[a-z-]{0,12}[0-9]? ?",
        1 => "\\PC{0,12}",
    ]
}

fn service() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("dsql".to_owned()),
        1 => Just("dsql-fips".to_owned()),
        1 => "dsq[a-z-]{0,4}",
        1 => "[a-z]{1,6}",
    ]
}

/// Host names that are, or nearly are, DSQL endpoints.
fn near_host() -> impl Strategy<Value = String> {
    let aws = (
        cluster_id(),
        service(),
        region(),
        prop_oneof![
            4 => Just(".on.aws"),
            1 => Just(".on.aws."),
            1 => Just(".on.aws.."),
            1 => Just(".aws"),
            1 => Just(".on.aws.example"),
        ],
    )
        .prop_map(|(id, service, region, suffix)| format!("{id}.{service}.{region}{suffix}"));
    prop_oneof![
        4 => aws,
        2 => cluster_id(),
        1 => Just("localhost".to_owned()),
        1 => "[a-zA-Z0-9-]{1,70}(\\.[a-zA-Z0-9-]{0,70}){0,5}\\.?",
        1 => "([a-z]{1,63}\\.){3,5}[a-z]{2,63}",
        1 => "[0-9]{1,3}(\\.[0-9]{1,3}){3}",
        1 => "\\PC{0,40}",
    ]
}

/// Checks what every successfully parsed endpoint must satisfy.
fn check_endpoint(endpoint: &Endpoint) -> Result<(), TestCaseError> {
    let host = endpoint.host();
    prop_assert_eq!(endpoint.to_string(), host);
    prop_assert!(!host.is_empty() && host.len() <= 253, "{host:?}");
    prop_assert!(!host.ends_with('.'), "{host:?}");
    prop_assert_eq!(host.to_ascii_lowercase(), host);
    for label in host.split('.') {
        prop_assert!(!label.is_empty() && label.len() <= 63, "{host:?}");
        prop_assert!(!label.starts_with('-') && !label.ends_with('-'), "{host:?}");
        prop_assert!(
            label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "{host:?}"
        );
    }
    // Display round trip, with the region.
    let again = Endpoint::parse(&endpoint.to_string(), Some(endpoint.region()));
    prop_assert_eq!(again.as_ref(), Ok(endpoint));
    match endpoint.kind() {
        EndpointKind::Cluster { id } => {
            prop_assert_eq!(id.len(), CLUSTER_ID_LEN);
            prop_assert_eq!(endpoint.cluster_id(), Some(id.as_str()));
            prop_assert!(host.starts_with(&format!("{id}.dsql")), "{host:?}");
            prop_assert!(
                host.ends_with(&format!(".{}.on.aws", endpoint.region())),
                "{host:?}"
            );
            // AWS endpoints need no region.
            prop_assert_eq!(endpoint.to_string().parse::<Endpoint>(), Ok(endpoint.clone()));
        }
        EndpointKind::Custom => prop_assert_eq!(endpoint.cluster_id(), None),
        _ => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn endpoint_parse_never_panics(input in "\\PC{0,80}|.{0,80}", region in proptest::option::of(region())) {
        match Endpoint::parse(&input, region.as_deref()) {
            Ok(endpoint) => check_endpoint(&endpoint)?,
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let _ = input.parse::<Endpoint>();
    }

    #[test]
    fn near_valid_endpoints_are_normalized(host in near_host(), region in proptest::option::of(region())) {
        match Endpoint::parse(&host, region.as_deref()) {
            Ok(endpoint) => {
                check_endpoint(&endpoint)?;
                let normalized = host.strip_suffix('.').unwrap_or(&host).to_ascii_lowercase();
                if normalized.contains('.') || normalized == "localhost" {
                    prop_assert_eq!(endpoint.host(), normalized);
                } else {
                    // A bare cluster id, with its region.
                    let expected = Endpoint::cluster(&normalized, region.as_deref().unwrap());
                    prop_assert_eq!(Ok(&endpoint), expected.as_ref());
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn cluster_and_custom_constructors_agree_with_parse(id in cluster_id(), region in region(), host in near_host()) {
        match Endpoint::cluster(&id, &region) {
            Ok(endpoint) => {
                check_endpoint(&endpoint)?;
                let lower = id.to_ascii_lowercase();
                prop_assert_eq!(endpoint.cluster_id(), Some(lower.as_str()));
                prop_assert_eq!(endpoint.host().parse::<Endpoint>(), Ok(endpoint.clone()));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        match Endpoint::custom(&host, &region) {
            Ok(endpoint) => {
                prop_assert_eq!(endpoint.to_string(), endpoint.host());
                prop_assert_eq!(endpoint.cluster_id(), None);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn from_url_never_panics(input in "\\PC{0,120}|.{0,120}") {
        if let Err(e) = DsqlConfig::from_url(&input) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}

/// A distinctive secret, so that finding it in a message is never chance.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~!$&'()*+,;=-]{0,12}".prop_map(|tail| format!("Pw9xQ{tail}"))
}

fn param() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("region"),
        Just("profile"),
        Just("tokenDurationSecs"),
        Just("token_duration_secs"),
        Just("application_name"),
        Just("applicationName"),
        Just("sslmode"),
        Just("sslrootcert"),
        Just("sslnegotiation"),
        Just("hostaddr"),
        Just("connect_timeout"),
        Just("options"),
        Just("user"),
    ];
    let value = prop_oneof![
        region(),
        "[0-9]{1,8}",
        Just("verify-full".to_owned()),
        Just("require".to_owned()),
        Just("direct".to_owned()),
        Just("127.0.0.1".to_owned()),
        "[a-zA-Z0-9%._-]{0,16}",
    ];
    (name, value).prop_map(|(name, value)| format!("{name}={value}"))
}

/// Connection URLs, valid or nearly, maybe with a password.
fn near_url() -> impl Strategy<Value = (String, Option<String>)> {
    let scheme = prop_oneof![
        4 => Just("postgres"),
        2 => Just("postgresql"),
        2 => Just("dsql"),
        1 => Just("http"),
        1 => Just("DSQL"),
    ];
    let user = proptest::option::of("[a-zA-Z0-9_%-]{0,12}");
    let password_in = prop_oneof![Just(None), Just(Some(false)), Just(Some(true))];
    let port = proptest::option::of(prop_oneof!["[0-9]{1,6}", "[a-z]{0,3}"]);
    let path = proptest::option::of("[a-zA-Z0-9_%/-]{0,12}");
    let params = proptest::collection::vec(param(), 0..4);
    (
        scheme,
        user,
        password_in,
        secret(),
        near_host(),
        port,
        path,
        params,
    )
        .prop_map(
            |(scheme, user, password_in, secret, host, port, path, mut params)| {
                let mut url = format!("{scheme}://");
                let password = password_in.map(|in_query| {
                    if in_query {
                        params.push(format!("password={secret}"));
                    } else {
                        url.push_str(user.as_deref().unwrap_or(""));
                        url.push(':');
                        url.push_str(&secret);
                        url.push('@');
                    }
                    secret
                });
                if let (Some(user), None | Some(true)) = (&user, password_in) {
                    url.push_str(user);
                    url.push('@');
                }
                url.push_str(&host);
                if let Some(port) = port {
                    url.push(':');
                    url.push_str(&port);
                }
                if let Some(path) = path {
                    url.push('/');
                    url.push_str(&path);
                }
                if !params.is_empty() {
                    url.push('?');
                    url.push_str(&params.join("&"));
                }
                (url, password)
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn url_errors_explain_and_never_show_the_password((url, password) in near_url()) {
        let result = DsqlConfig::from_url(&url);
        if let Err(e) = &result {
            prop_assert!(!e.to_string().is_empty());
        }
        if let Some(password) = password {
            prop_assert!(result.is_err(), "{url:?} with a password was accepted");
            let e = result.unwrap_err();
            prop_assert!(!e.to_string().contains(&password), "{url:?}: {e}");
            prop_assert!(!format!("{e:?}").contains(&password), "{url:?}: {e:?}");
        }
    }

    #[test]
    fn urls_from_valid_parts_parse_back(
        id in "[a-z0-9]{26}",
        region in "(us|eu|ap)-(east|west|southeast)-[1-9]",
        scheme in prop_oneof![Just("postgres"), Just("postgresql"), Just("dsql")],
        user in "\\PC{1,12}",
        // `.` and `..`, even percent-encoded, are dot segments of a URL path:
        // `/%2E` is the path `/`, so the default database (a known quirk).
        database in "\\PC{1,12}".prop_filter("dot segment", |d| d != "." && d != ".."),
        port in 1..=u16::MAX,
        application in "[a-zA-Z0-9_-]{1,12}",
        seconds in 1..=604_800_u64,
    ) {
        let host = format!("{id}.dsql.{region}.on.aws");
        let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let url = format!(
            "{scheme}://{}@{host}:{port}/{}?region={region}&application_name={application}&tokenDurationSecs={seconds}",
            enc(&user),
            enc(&database),
        );
        let config = DsqlConfig::from_url(&url).map_err(|e| TestCaseError::fail(format!("{url}: {e}")))?;
        prop_assert_eq!(config.endpoint().host(), host);
        prop_assert_eq!(config.endpoint().region(), region);
        prop_assert_eq!(config.endpoint().cluster_id(), Some(id.as_str()));
        prop_assert_eq!(config.user(), user);
        prop_assert_eq!(config.database(), database);
        prop_assert_eq!(config.port(), port);
        prop_assert_eq!(config.application_name(), Some(application.as_str()));
        prop_assert_eq!(config.token_duration().as_secs(), seconds);
        prop_assert_eq!(url.parse::<DsqlConfig>(), Ok(config.clone()));
    }
}

/// Junk, and junk shaped like a multi-host URL.
fn multi_host_junk() -> impl Strategy<Value = String> {
    let shaped = (
        prop_oneof![
            Just(String::new()),
            Just("postgres://".to_owned()),
            Just("dsql://".to_owned()),
            "[a-z]{0,6}:/?/?",
        ],
        "[a-zA-Z0-9:@,\\[\\]/?&=#.%+\t -]{0,80}",
    )
        .prop_map(|(scheme, rest)| format!("{scheme}{rest}"));
    prop_oneof![1 => "\\PC{0,120}|.{0,120}", 2 => shaped]
}

/// One `host[:port]` of a host list: near-DSQL names and IPv6 literals.
fn host_item() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        4 => near_host(),
        1 => "\\[[0-9a-fA-F:.]{0,16}\\]?",
    ];
    let port = proptest::option::of(prop_oneof!["[0-9]{1,6}", "[a-z]{0,3}"]);
    (host, port).prop_map(|(host, port)| match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// Multi-host connection URLs, valid or nearly, maybe with a password.
fn near_multi_url() -> impl Strategy<Value = (String, Option<String>)> {
    let scheme = prop_oneof![4 => Just("postgres"), 2 => Just("dsql"), 1 => Just("mysql")];
    // `@` in a user name: the URL parser's user info runs to the last `@`.
    let user = proptest::option::of("[a-zA-Z0-9_%@-]{0,12}");
    let password_in = prop_oneof![Just(None), Just(Some(false)), Just(Some(true))];
    let hosts = proptest::collection::vec(host_item(), 1..4);
    let hostaddr = proptest::option::of(proptest::collection::vec(
        prop_oneof![
            Just(""),
            Just("127.0.0.1"),
            Just("::1"),
            Just(" 10.0.0.2 "),
            Just("db")
        ],
        1..4,
    ));
    let params = proptest::collection::vec(param(), 0..3);
    (
        scheme,
        user,
        password_in,
        secret(),
        hosts,
        hostaddr,
        proptest::option::of("[a-zA-Z0-9_%/-]{0,12}"),
        params,
    )
        .prop_map(
            |(scheme, user, password_in, secret, hosts, hostaddr, path, mut params)| {
                let mut url = format!("{scheme}://");
                match password_in {
                    Some(false) => url.push_str(&format!("{}:{secret}@", user.as_deref().unwrap_or(""))),
                    Some(true) => params.push(format!("password={secret}")),
                    None => {}
                }
                if let (Some(user), None | Some(true)) = (&user, password_in) {
                    url.push_str(&format!("{user}@"));
                }
                url.push_str(&hosts.join(","));
                if let Some(path) = path {
                    url.push('/');
                    url.push_str(&path);
                }
                if let Some(hostaddr) = hostaddr {
                    params.push(format!("hostaddr={}", hostaddr.join(",")));
                }
                if !params.is_empty() {
                    url.push('?');
                    url.push_str(&params.join("&"));
                }
                (url, password_in.map(|_| secret))
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cluster_set_from_url_never_panics(input in multi_host_junk()) {
        match ClusterSet::from_url(&input) {
            Ok(set) => {
                prop_assert!(!set.is_empty() && set.len() == set.members().len());
                prop_assert_eq!(set.members().first(), Some(set.local()));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn cluster_set_url_errors_explain_and_never_show_the_password((url, password) in near_multi_url()) {
        let result = ClusterSet::from_url(&url);
        match &result {
            Ok(set) => {
                // Hosts are distinct, and each is found by its name.
                for member in set.members() {
                    let host = member.endpoint().host();
                    prop_assert_eq!(set.get(host), Some(member), "{}", url);
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        if let Some(password) = password {
            prop_assert!(result.is_err(), "{url:?} with a password was accepted");
            let e = result.unwrap_err();
            prop_assert!(!e.to_string().contains(&password), "{url:?}: {e}");
            prop_assert!(!format!("{e:?}").contains(&password), "{url:?}: {e:?}");
        }
    }

    #[test]
    fn one_host_urls_are_read_as_dsql_config_reads_them((url, _) in near_url()) {
        // A comma may make several hosts (a few percent of the cases).
        if !url.contains(',') {
            prop_assert_eq!(ClusterSet::from_url(&url), DsqlConfig::from_url(&url).map(ClusterSet::new));
        }
    }

    #[test]
    fn multi_host_urls_from_valid_parts_parse_back(
        members in proptest::collection::vec(
            (
                "[a-z0-9]{26}",
                "(us|eu|ap)-(east|west|southeast)-[1-9]",
                proptest::option::of(1..=u16::MAX),
                proptest::option::of(any::<[u8; 4]>()),
            ),
            2..4,
        ),
        scheme in prop_oneof![Just("postgres"), Just("postgresql"), Just("dsql")],
        user in "\\PC{1,12}",
        database in "\\PC{1,12}".prop_filter("dot segment", |d| d != "." && d != ".."),
        seconds in 1..=604_800_u64,
    ) {
        let hosts: Vec<String> =
            members.iter().map(|(id, region, _, _)| format!("{id}.dsql.{region}.on.aws")).collect();
        prop_assume!((1..hosts.len()).all(|i| !hosts[..i].contains(&hosts[i])));
        let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let items: Vec<String> = hosts
            .iter()
            .zip(&members)
            .map(|(host, (_, _, port, _))| match port {
                Some(port) => format!("{host}:{port}"),
                None => host.clone(),
            })
            .collect();
        let addrs: Vec<Option<IpAddr>> =
            members.iter().map(|(_, _, _, addr)| addr.map(|a| IpAddr::V4(Ipv4Addr::from(a)))).collect();
        let mut url = format!(
            "{scheme}://{}@{}/{}?tokenDurationSecs={seconds}",
            enc(&user),
            items.join(","),
            enc(&database),
        );
        if addrs.iter().any(Option::is_some) {
            let list: Vec<String> = addrs.iter().map(|a| a.map(|a| a.to_string()).unwrap_or_default()).collect();
            url.push_str(&format!("&hostaddr={}", list.join(",")));
        }
        let set = ClusterSet::from_url(&url).map_err(|e| TestCaseError::fail(format!("{url}: {e}")))?;
        prop_assert_eq!(set.len(), members.len());
        for (member, ((host, (_, region, port, _)), addr)) in
            set.members().iter().zip(hosts.iter().zip(&members).zip(&addrs))
        {
            prop_assert_eq!(member.endpoint().host(), host);
            prop_assert_eq!(member.endpoint().region(), region);
            prop_assert_eq!(member.port(), port.unwrap_or(5432));
            prop_assert_eq!(member.hostaddr(), *addr);
            prop_assert_eq!(member.user(), &user);
            prop_assert_eq!(member.database(), &database);
            prop_assert_eq!(member.token_duration().as_secs(), seconds);
        }
        prop_assert_eq!(url.parse::<ClusterSet>(), Ok(set));
    }
}

/// Found by this fuzzing: an unencoded `?` in a URL's password ends the
/// authority there, so the rest of the password became a query parameter
/// name, which `ConfigError::UnknownParameter` printed.
#[test]
fn password_with_question_mark_is_not_echoed() {
    for url in [
        "postgres://admin:?hunter2@localhost/postgres?region=us-east-1",
        "postgres://admin:1234?hunter2@localhost/postgres?region=us-east-1",
        "postgres://localhost/postgres?hunter2@x=1&region=us-east-1",
        // The URL parser drops tabs and newlines, here in `://`.
        "postgres:/\t/admin:?hunter2=1&region=us-east-1@localhost",
    ] {
        let err = DsqlConfig::from_url(url).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        let err = ClusterSet::from_url(url).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}

/// Found by this fuzzing: the database `.` (percent-encoded `%2E`) is a URL
/// dot segment, so the path became `/` and the default database was
/// silently used instead.
#[test]
fn dot_segment_database_is_not_silently_replaced() {
    let result = DsqlConfig::from_url("postgres://admin@localhost/%2E?region=us-east-1");
    assert!(
        result.as_ref().is_err() || result.as_ref().unwrap().database() == ".",
        "{result:?}"
    );
}
