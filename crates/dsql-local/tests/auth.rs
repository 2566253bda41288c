//! TLS negotiation and token verification against the real PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dsql_auth::aws::Credentials;
use dsql_auth::clock::ManualClock;
use dsql_auth::{Action, DsqlConfig, Endpoint, SslNegotiation};
use dsql_local::catalog::{self, DsqlError};
use dsql_local::{AccessKey, DsqlLocal, RefusalReason, TokenRequest, sign_token};
use dsql_testkit::local::{connect, connect_with, db_error, pg_config, sign, start, token};
use dsql_testkit::{tls, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::NoTls;

async fn refused(local: &DsqlLocal, config: &DsqlConfig, password: &str) -> tokio_postgres::Error {
    match connect_with(&pg_config(config, password), tls::verify_full(local.ca_pem())).await {
        Ok(_) => panic!("the connection was accepted"),
        Err(e) => e,
    }
}

fn assert_error(error: &tokio_postgres::Error, expected: &DsqlError) {
    let db = db_error(error);
    assert_eq!(db.severity(), "FATAL", "{db:?}");
    assert_eq!(db.code().code(), expected.code, "{db:?}");
    assert_eq!(db.message(), expected.message, "{db:?}");
}

fn assert_access_denied(error: &tokio_postgres::Error, hint_prefix: &str) {
    assert_error(error, &catalog::ACCESS_DENIED);
    let hint = db_error(error).hint().unwrap_or_default();
    assert!(
        hint.starts_with(hint_prefix),
        "hint {hint:?} does not start with {hint_prefix:?}"
    );
}

fn signature(token: &str) -> &str {
    token.rsplit_once("X-Amz-Signature=").map_or("", |(_, s)| s)
}

fn assert_not_echoed(error: &tokio_postgres::Error, token: &str) {
    let db = db_error(error);
    let shown = format!(
        "{} {:?} {:?} {error} {error:?}",
        db.message(),
        db.hint(),
        db.detail()
    );
    assert!(
        !shown.contains(signature(token)),
        "the signature was echoed: {shown}"
    );
}

#[tokio::test]
async fn tokens_are_accepted_over_both_tls_negotiations_with_verify_full() {
    let local = start(DsqlLocal::builder()).await;
    for user in ["admin", "reader"] {
        for negotiation in [SslNegotiation::Postgres, SslNegotiation::Direct] {
            let config = local
                .client_config(user)
                .expect("config")
                .to_builder()
                .ssl_negotiation(negotiation)
                .build()
                .expect("config");
            let token = sign(&config, local.credentials(), None).await;
            assert!(token.contains(if user == "admin" {
                "DbConnectAdmin"
            } else {
                "Action=DbConnect&"
            }));
            let client = connect_with(&pg_config(&config, &token), tls::verify_full(local.ca_pem()))
                .await
                .unwrap_or_else(|e| panic!("{user} over {negotiation:?}: {e:?}"));
            let row = client
                .query_one(
                    "SELECT current_user::text, current_setting('transaction_isolation')",
                    &[],
                )
                .await
                .expect("query");
            // Each role runs as the unprivileged upstream role of its name;
            // sessions run at repeatable read like DSQL.
            assert_eq!(row.get::<_, String>(0), user);
            assert_eq!(row.get::<_, String>(1), "repeatable read");
        }
    }
    let stats = local.stats().snapshot();
    assert_eq!(stats.sessions_opened, 4);
    assert_eq!(stats.refused.total(), 0);
    local.shutdown().await;
}

#[tokio::test]
async fn psql_with_verify_full_runs_a_query() {
    let local = start(DsqlLocal::builder()).await;
    let token = token(&local, "admin").await;
    let conninfo = format!("{} connect_timeout=10", local.libpq_conninfo("admin"));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("psql")
            .args(["-X", "-A", "-t", "-c", "SELECT 1", &conninfo])
            .env("PGPASSWORD", token)
            .env_remove("PGSERVICE")
            .env_remove("PGSSLMODE")
            .output()
    })
    .await
    .expect("psql task")
    .expect("psql runs");
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "1");
    local.shutdown().await;
}

#[tokio::test]
async fn the_connection_url_is_the_client_config() {
    let local = start(
        DsqlLocal::builder()
            .endpoint_host("localhost")
            .region("eu-west-1"),
    )
    .await;
    for user in ["admin", "app user"] {
        let url = local.connection_url(user);
        let config = DsqlConfig::from_url(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(config, local.client_config(user).expect("config"), "{url}");
    }
    let config = DsqlConfig::from_url(&local.connection_url("admin")).expect("config");
    let token = sign(&config, local.credentials(), None).await;
    let client = connect_with(&pg_config(&config, &token), tls::verify_full(local.ca_pem()))
        .await
        .expect("connects");
    client.simple_query("SELECT 1").await.expect("query");
    local.shutdown().await;
}

#[tokio::test]
async fn a_localhost_endpoint_works() {
    let local = start(
        DsqlLocal::builder()
            .endpoint_host("localhost")
            .region("eu-west-1"),
    )
    .await;
    assert_eq!(local.host(), "localhost");
    let client = connect(&local, "admin").await.expect("connects");
    let one: i32 = client.query_one("SELECT 1", &[]).await.expect("query").get(0);
    assert_eq!(one, 1);

    // The server's own token helper signs for the endpoint too.
    let config = local.client_config("reader").expect("config");
    let token = local.token("reader").expect("token");
    assert!(token.starts_with("localhost/?Action=DbConnect&"));
    connect_with(&pg_config(&config, &token), tls::verify_full(local.ca_pem()))
        .await
        .expect("its token is accepted");
    local.shutdown().await;
}

#[tokio::test]
async fn a_persistent_ca_survives_restarts() {
    let dir = std::env::temp_dir().join(unique("ca_dir"));
    let first = start(DsqlLocal::builder().ca_dir(&dir)).await;
    assert_eq!(first.ca_path(), dir.join("ca.pem"));
    assert!(dir.join("ca-key.pem").exists());
    let pem = first.ca_pem().to_owned();
    first.shutdown().await;
    assert!(dir.join("ca.pem").exists(), "a persistent CA is kept at shutdown");

    let second = start(DsqlLocal::builder().ca_dir(&dir)).await;
    assert_eq!(second.ca_pem(), pem);
    // A new server certificate, signed by the reloaded CA, verifies.
    connect(&second, "admin")
        .await
        .expect("verify-full with the stored CA");
    second.shutdown().await;
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test]
async fn unknown_keys_can_be_allowed() {
    let local = start(
        DsqlLocal::builder()
            .without_default_key()
            .allow_unknown_access_keys(true),
    )
    .await;
    let config = local.client_config("admin").expect("config");
    let anyone = Credentials::new("AKIDANYONE", "whatever", None, None, "test");
    let token = sign(&config, anyone, None).await;
    connect_with(&pg_config(&config, &token), tls::verify_full(local.ca_pem()))
        .await
        .expect("accepted without a signature check");
    // Every other check still applies.
    let reader = local.client_config("reader").expect("config");
    let error = refused(&local, &reader, &token).await;
    assert_access_denied(&error, "Wrong user to action mapping");
    local.shutdown().await;

    let error = DsqlLocal::builder()
        .without_default_key()
        .start()
        .await
        .expect_err("no key, no token could ever be accepted");
    assert!(error.to_string().contains("access_key"), "{error}");
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let clock = ManualClock::new(SystemTime::now());
    let local = start(DsqlLocal::builder().clock(Arc::new(clock.clone()))).await;
    let config = local.client_config("admin").expect("config");
    let token = sign(&config, local.credentials(), Some(Arc::new(clock.clone()))).await;
    connect_with(&pg_config(&config, &token), tls::verify_full(local.ca_pem()))
        .await
        .expect("fresh token accepted");

    clock.advance(config.token_duration());
    let error = refused(&local, &config, &token).await;
    assert_access_denied(&error, "Signature expired: ");
    assert_not_echoed(&error, &token);
    assert_eq!(local.stats().snapshot().refused.get(RefusalReason::Expired), 1);
    local.shutdown().await;
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    let local = start(DsqlLocal::builder()).await;
    let config = local.client_config("admin").expect("config");
    let token = sign(&config, local.credentials(), None).await;
    let last = token.chars().last().expect("non-empty");
    let tampered = format!(
        "{}{}",
        &token[..token.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let error = refused(&local, &config, &tampered).await;
    assert_access_denied(&error, "The request signature we calculated does not match");
    assert_not_echoed(&error, &tampered);

    let error = refused(&local, &config, "not-a-token").await;
    assert_access_denied(&error, "The password is not a DSQL authentication token");
    let stats = local.stats().snapshot();
    assert_eq!(stats.refused.get(RefusalReason::SignatureMismatch), 1);
    assert_eq!(stats.refused.get(RefusalReason::MalformedToken), 1);
    local.shutdown().await;
}

#[tokio::test]
async fn the_action_must_match_the_user() {
    let local = start(DsqlLocal::builder()).await;
    let reader = local.client_config("reader").expect("config");
    let reader_token = sign(&reader, local.credentials(), None).await;
    let admin = local.client_config("admin").expect("config");
    let error = refused(&local, &admin, &reader_token).await;
    assert_access_denied(
        &error,
        "Wrong user to action mapping. user: admin, action: DbConnect",
    );
    assert_eq!(
        db_error(&error).hint(),
        Some("Wrong user to action mapping. user: admin, action: DbConnect")
    );

    let admin_token = sign(&admin, local.credentials(), None).await;
    let error = refused(&local, &reader, &admin_token).await;
    assert_access_denied(
        &error,
        "Wrong user to action mapping. user: reader, action: DbConnectAdmin",
    );
    assert_eq!(
        local.stats().snapshot().refused.get(RefusalReason::WrongAction),
        2
    );
    local.shutdown().await;
}

#[tokio::test]
async fn tokens_for_another_region_or_host_are_refused() {
    let local = start(DsqlLocal::builder()).await;
    let config = local.client_config("admin").expect("config");

    let other_region = config
        .to_builder()
        .endpoint(Endpoint::custom(local.host(), "eu-west-1").expect("endpoint"))
        .build()
        .expect("config");
    let token = sign(&other_region, local.credentials(), None).await;
    let error = refused(&local, &config, &token).await;
    assert_access_denied(
        &error,
        "Credential should be scoped to a valid region, not 'eu-west-1'",
    );

    let other_host = config
        .to_builder()
        .host("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws")
        .build()
        .expect("config");
    let token = sign(&other_host, local.credentials(), None).await;
    let error = refused(&local, &config, &token).await;
    assert_access_denied(&error, "User: arn:aws:iam::");
    assert!(
        db_error(&error)
            .hint()
            .is_some_and(|h| h.ends_with("is not authorized to access this resource"))
    );
    let stats = local.stats().snapshot();
    assert_eq!(stats.refused.get(RefusalReason::WrongRegion), 1);
    assert_eq!(stats.refused.get(RefusalReason::WrongHost), 1);
    local.shutdown().await;
}

#[tokio::test]
async fn unknown_keys_and_week_long_tokens_are_refused() {
    let local = start(DsqlLocal::builder()).await;
    let config = local.client_config("admin").expect("config");
    let unknown = Credentials::new("AKIDUNKNOWN", "some-secret", None, None, "test");
    let token = sign(&config, unknown, None).await;
    let error = refused(&local, &config, &token).await;
    assert_access_denied(&error, "The security token included in the request is invalid.");

    // dsql-auth refuses to sign for more than a week; sign by hand.
    let mut request = TokenRequest::new(
        local.host(),
        "us-east-1",
        Action::DbConnectAdmin,
        local.access_key(),
    );
    request.expires_in = Duration::from_secs(604_801);
    let token = sign_token(&request).expect("signed");
    let error = refused(&local, &config, &token).await;
    assert_access_denied(&error, "X-Amz-Expires must be less than a week");

    // Exactly one week is fine.
    request.expires_in = Duration::from_secs(604_800);
    let token = sign_token(&request).expect("signed");
    connect_with(&pg_config(&config, &token), tls::verify_full(local.ca_pem()))
        .await
        .expect("a one-week token is accepted");

    let stats = local.stats().snapshot();
    assert_eq!(stats.refused.get(RefusalReason::UnknownAccessKey), 1);
    assert_eq!(stats.refused.get(RefusalReason::ExpiresTooLong), 1);
    local.shutdown().await;
}

#[tokio::test]
async fn temporary_credentials_are_accepted() {
    let key =
        AccessKey::new("ASIALOCALTEMPORARY", "temporary-secret").with_session_token("FwoGZXIvYXdzEXAMPLE+/=");
    let local = start(DsqlLocal::builder().access_key(key.clone())).await;
    let config = local.client_config("admin").expect("config");
    let expiry = SystemTime::now() + Duration::from_secs(3600);
    let credentials = Credentials::new(
        key.access_key_id(),
        key.secret_access_key(),
        key.session_token().map(str::to_owned),
        Some(expiry),
        "test",
    );
    let token = sign(&config, credentials, None).await;
    assert!(token.contains("X-Amz-Security-Token="));
    let client = connect_with(&pg_config(&config, &token), tls::verify_full(local.ca_pem()))
        .await
        .expect("temporary credentials accepted");
    client.simple_query("SELECT 1").await.expect("query");

    let wrong = Credentials::new(
        key.access_key_id(),
        key.secret_access_key(),
        Some("another-session-token".to_owned()),
        Some(expiry),
        "test",
    );
    let token = sign(&config, wrong, None).await;
    let error = refused(&local, &config, &token).await;
    assert_access_denied(&error, "The security token included in the request is invalid.");
    assert_eq!(
        local
            .stats()
            .snapshot()
            .refused
            .get(RefusalReason::InvalidSessionToken),
        1
    );
    local.shutdown().await;
}

#[tokio::test]
async fn plaintext_is_refused() {
    let local = start(DsqlLocal::builder()).await;
    let config = local.client_config("admin").expect("config");
    let token = token(&local, "admin").await;
    let mut pg = pg_config(&config, &token);
    pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
    let error = match pg.connect(NoTls).await {
        Ok(_) => panic!("plaintext accepted"),
        Err(e) => e,
    };
    assert_error(&error, &catalog::TLS_REQUIRED);
    assert_eq!(
        local.stats().snapshot().refused.get(RefusalReason::TlsRequired),
        1
    );
    local.shutdown().await;
}

#[tokio::test]
async fn missing_or_wrong_sni_is_refused() {
    let local = start(DsqlLocal::builder()).await;
    let config = local.client_config("admin").expect("config");
    let token = token(&local, "admin").await;

    let error = match connect_with(
        &pg_config(&config, &token),
        tls::connector(local.ca_pem(), true, false),
    )
    .await
    {
        Ok(_) => panic!("accepted without SNI"),
        Err(e) => e,
    };
    assert_error(&error, &catalog::SNI_REQUIRED);

    // The certificate is valid for localhost, but the endpoint is the cluster host.
    let localhost = config
        .to_builder()
        .endpoint(Endpoint::custom("localhost", "us-east-1").expect("endpoint"))
        .build()
        .expect("config");
    let error = match connect_with(&pg_config(&localhost, &token), tls::verify_full(local.ca_pem())).await {
        Ok(_) => panic!("accepted with SNI localhost"),
        Err(e) => e,
    };
    assert_error(&error, &catalog::UNKNOWN_ENDPOINT);

    let stats = local.stats().snapshot();
    assert_eq!(stats.refused.get(RefusalReason::SniMissing), 1);
    assert_eq!(stats.refused.get(RefusalReason::SniMismatch), 1);
    local.shutdown().await;
}

#[tokio::test]
async fn direct_tls_requires_alpn() {
    let local = start(DsqlLocal::builder()).await;
    let config = local
        .client_config("admin")
        .expect("config")
        .to_builder()
        .ssl_negotiation(SslNegotiation::Direct)
        .build()
        .expect("config");
    let token = sign(&config, local.credentials(), None).await;
    let error = match connect_with(
        &pg_config(&config, &token),
        tls::connector(local.ca_pem(), false, true),
    )
    .await
    {
        Ok(_) => panic!("direct TLS accepted without ALPN"),
        Err(e) => e,
    };
    assert_error(&error, &catalog::ALPN_REQUIRED);
    local.shutdown().await;
}

#[tokio::test]
async fn gssenc_requests_are_declined() {
    let local = start(DsqlLocal::builder()).await;
    let mut tcp = tokio::net::TcpStream::connect(local.addr())
        .await
        .expect("connect");
    for (code, answer) in [(80_877_104_u32, b'N'), (80_877_103, b'S')] {
        let mut packet = 8_u32.to_be_bytes().to_vec();
        packet.extend_from_slice(&code.to_be_bytes());
        tcp.write_all(&packet).await.expect("write");
        assert_eq!(tcp.read_u8().await.expect("answer"), answer);
    }
    local.shutdown().await;
}

#[tokio::test]
async fn newer_protocol_versions_are_negotiated_down() {
    let local = start(DsqlLocal::builder()).await;
    let token = token(&local, "admin").await;
    let mut tls = tls::raw_stream(&local).await;

    // Protocol 3.2 with an unknown protocol option.
    let mut body = (3_u32 << 16 | 2).to_be_bytes().to_vec();
    for field in [
        "user",
        "admin",
        "database",
        "postgres",
        "_pq_.future_option",
        "on",
        "",
    ] {
        body.extend_from_slice(field.as_bytes());
        body.push(0);
    }
    let mut startup = u32::try_from(body.len() + 4)
        .expect("small")
        .to_be_bytes()
        .to_vec();
    startup.extend_from_slice(&body);
    tls.write_all(&startup).await.expect("startup");

    assert_eq!(tls.read_u8().await.expect("tag"), b'v');
    let len = tls.read_u32().await.expect("length");
    let mut rest = vec![0; len as usize - 4];
    tls.read_exact(&mut rest).await.expect("body");
    assert_eq!(
        &rest[..8],
        &[0, 0, 0, 0, 0, 0, 0, 1],
        "minor version 0, one option"
    );
    assert_eq!(&rest[8..], b"_pq_.future_option\0");
    assert_eq!(tls.read_u8().await.expect("tag"), b'R');
    assert_eq!(tls.read_u32().await.expect("length"), 8);
    assert_eq!(tls.read_u32().await.expect("code"), 3, "cleartext password");

    let mut password = vec![b'p'];
    password.extend_from_slice(&u32::try_from(token.len() + 5).expect("small").to_be_bytes());
    password.extend_from_slice(token.as_bytes());
    password.push(0);
    tls.write_all(&password).await.expect("password");
    assert_eq!(tls.read_u8().await.expect("tag"), b'R');
    assert_eq!(tls.read_u32().await.expect("length"), 8);
    assert_eq!(tls.read_u32().await.expect("code"), 0, "authenticated");
    local.shutdown().await;
}

#[tokio::test]
async fn refusals_do_not_leak_the_token_into_debug_output() {
    let local = start(DsqlLocal::builder()).await;
    let shown = format!("{local:?} {:?} {:?}", local.access_key(), local.stats());
    assert!(!shown.contains(dsql_local::DEFAULT_SECRET_ACCESS_KEY), "{shown}");
    local.shutdown().await;
}
