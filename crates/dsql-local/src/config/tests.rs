use super::*;
use crate::error::ConfigError;

#[test]
fn defaults_are_dsqls() {
    let config = LocalConfig::builder().build().expect("defaults are valid");
    assert_eq!(
        config.endpoint().host(),
        "dsqllocal00000000000000000.dsql.us-east-1.on.aws"
    );
    assert_eq!(DEFAULT_CLUSTER_ID.len(), dsql_auth::CLUSTER_ID_LEN);
    assert_eq!(config.endpoint().region(), "us-east-1");
    assert_eq!(config.session_lifetime(), Duration::from_secs(3600));
    assert_eq!(config.transaction_timeout(), Duration::from_secs(300));
    assert_eq!(config.max_connections(), 10_000);
    assert_eq!(config.connection_rate(), Some(RateLimit::new(100.0, 1000)));
    assert_eq!(config.upstream_role("admin"), "admin");
    assert_eq!(config.upstream_database(), "postgres");
    assert_eq!(config.access_keys()[0].access_key_id(), DEFAULT_ACCESS_KEY_ID);
    assert!(!format!("{config:?}").contains(DEFAULT_SECRET_ACCESS_KEY));
}

#[test]
fn localhost_endpoint_takes_the_region() {
    let config = LocalConfig::builder()
        .endpoint_host("localhost")
        .region("eu-west-1")
        .build()
        .expect("valid");
    assert_eq!(config.endpoint().host(), "localhost");
    assert_eq!(config.endpoint().region(), "eu-west-1");
    let config = LocalConfig::builder()
        .endpoint_host("localhost")
        .build()
        .expect("valid");
    assert_eq!(config.endpoint().region(), "us-east-1");
}

#[test]
fn invalid_settings_are_named() {
    let err = LocalConfig::builder()
        .max_connections(0)
        .build()
        .expect_err("invalid");
    assert!(err.to_string().contains("max_connections"), "{err}");
    let err = LocalConfig::builder()
        .connection_rate(RateLimit::new(0.0, 1))
        .build()
        .expect_err("invalid");
    assert!(err.to_string().contains("connection_rate"), "{err}");
    let err = LocalConfig::builder()
        .upstream("mysql://x")
        .build()
        .expect_err("invalid");
    assert!(err.to_string().contains("upstream"), "{err}");
    let err = LocalConfig::builder()
        .endpoint_host("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws")
        .region("eu-west-1")
        .build()
        .expect_err("invalid");
    assert!(matches!(err, ConfigError::Endpoint(_)), "{err}");
}

#[test]
fn a_network_round_trip_is_bounded_and_zero_turns_it_off() {
    let zero = LocalConfig::builder().network_round_trip(Duration::ZERO).build();
    assert_eq!(zero.expect("valid").network_round_trip(), None);
    let region = LocalConfig::builder()
        .network_round_trip(Duration::from_millis(1))
        .build()
        .expect("valid");
    assert_eq!(region.network_round_trip(), Some(Duration::from_millis(1)));
    let error = LocalConfig::builder()
        .network_round_trip(Duration::MAX)
        .build()
        .expect_err("an endless round trip");
    assert!(error.to_string().contains("network_round_trip"), "{error}");
}
