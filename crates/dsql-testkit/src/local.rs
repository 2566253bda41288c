//! Signing, configuring and connecting by hand with tokio-postgres, for the
//! tests of `dsql-local` itself (which must not go through the stacks built
//! on it).

use std::time::Duration;

use dsql_auth::aws::Credentials;
use dsql_auth::clock::SharedClock;
use dsql_auth::{DsqlConfig, SigningProvider, SslNegotiation, TokenProvider};
use dsql_local::{DsqlLocal, LocalConfigBuilder};
use tokio_postgres::Client;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::DbError;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::UPSTREAM;

/// Starts `builder`'s `dsql-local` over the local PostgreSQL.
pub async fn start(builder: LocalConfigBuilder) -> DsqlLocal {
    builder
        .upstream(UPSTREAM)
        .start()
        .await
        .expect("dsql-local starts")
}

/// Signs a token for `config` with `credentials` (and `clock`, if given).
pub async fn sign(config: &DsqlConfig, credentials: Credentials, clock: Option<SharedClock>) -> String {
    let mut builder = SigningProvider::builder(config).credentials_provider(credentials);
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    let token = builder.build().token().await.expect("token signed");
    token.expose_secret().to_owned()
}

/// A token for `user` on `local`, signed with its credentials.
pub async fn token(local: &DsqlLocal, user: &str) -> String {
    let config = local.client_config(user).expect("client config");
    sign(&config, local.credentials(), None).await
}

/// A tokio-postgres configuration from a dsql-auth one: host (SNI and
/// certificate check), hostaddr, port, user, database, application name,
/// the TLS negotiation, TLS required, `password`.
pub fn pg_config(config: &DsqlConfig, password: &str) -> tokio_postgres::Config {
    let mut pg = tokio_postgres::Config::new();
    pg.host(config.endpoint().host())
        .port(config.port())
        .user(config.user())
        .dbname(config.database())
        .password(password)
        .ssl_mode(SslMode::Require)
        .connect_timeout(Duration::from_secs(10));
    if let Some(addr) = config.hostaddr() {
        pg.hostaddr(addr);
    }
    if config.ssl_negotiation() == SslNegotiation::Direct {
        pg.ssl_negotiation(tokio_postgres::config::SslNegotiation::Direct);
    }
    if let Some(name) = config.application_name() {
        pg.application_name(name);
    }
    pg
}

/// Connects with `tls` and spawns the connection task.
pub async fn connect_with(
    pg: &tokio_postgres::Config,
    tls: MakeRustlsConnect,
) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = pg.connect(tls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Connects to `local` as `user` with a fresh token, verify-full.
pub async fn connect(local: &DsqlLocal, user: &str) -> Result<Client, tokio_postgres::Error> {
    let config = local.client_config(user).expect("client config");
    let token = sign(&config, local.credentials(), None).await;
    connect_with(
        &pg_config(&config, &token),
        crate::tls::verify_full(local.ca_pem()),
    )
    .await
}

/// Connects to `local` as `user` with an `application_name`, verify-full.
pub async fn connect_app(local: &DsqlLocal, user: &str, application_name: &str) -> Client {
    let config = local
        .client_config(user)
        .expect("config")
        .to_builder()
        .application_name(application_name)
        .build()
        .expect("config");
    let token = sign(&config, local.credentials(), None).await;
    connect_with(
        &pg_config(&config, &token),
        crate::tls::verify_full(local.ca_pem()),
    )
    .await
    .expect("connects")
}

/// The server error inside a tokio-postgres error.
pub fn db_error(error: &tokio_postgres::Error) -> &DbError {
    error
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {error:?}"))
}
