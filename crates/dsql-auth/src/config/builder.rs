//! [`DsqlConfigBuilder`]: settings with DSQL's defaults, validated at
//! [`build`](DsqlConfigBuilder::build).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, DEFAULT_DATABASE, DEFAULT_PORT, DEFAULT_USER, DsqlConfig, SslNegotiation};
use crate::Endpoint;
use crate::token::{DEFAULT_TOKEN_DURATION, MAX_TOKEN_DURATION};

impl DsqlConfig {
    /// A builder holding this configuration, to change some of it.
    pub fn to_builder(&self) -> DsqlConfigBuilder {
        DsqlConfigBuilder {
            endpoint: Some(EndpointInput::Parsed(self.endpoint.clone())),
            region: None,
            user: Some(self.user.clone()),
            database: Some(self.database.clone()),
            port: Some(self.port),
            token_duration: Some(self.token_duration),
            hostaddr: self.hostaddr,
            connect_timeout: self.connect_timeout,
            application_name: self.application_name.clone(),
            profile: self.profile.clone(),
            ssl_root_cert: self.ssl_root_cert.clone(),
            ssl_negotiation: self.ssl_negotiation,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum EndpointInput {
    Host(String),
    Parsed(Endpoint),
}

/// Builds a [`DsqlConfig`]. Only the host is required; every other setting
/// has DSQL's default. Values are validated by [`build`](Self::build).
#[derive(Clone, Debug, Default)]
pub struct DsqlConfigBuilder {
    endpoint: Option<EndpointInput>,
    region: Option<String>,
    user: Option<String>,
    database: Option<String>,
    port: Option<u16>,
    token_duration: Option<Duration>,
    hostaddr: Option<IpAddr>,
    connect_timeout: Option<Duration>,
    application_name: Option<String>,
    profile: Option<String>,
    ssl_root_cert: Option<PathBuf>,
    ssl_negotiation: SslNegotiation,
}

impl DsqlConfigBuilder {
    /// The cluster's host name, or its bare cluster id (then a
    /// [`region`](Self::region) is needed).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.endpoint = Some(EndpointInput::Host(host.into()));
        self
    }

    /// An already parsed endpoint.
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = Some(EndpointInput::Parsed(endpoint));
        self
    }

    /// The region; it must agree with the host name's when both are given.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The PostgreSQL role (default `admin`).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The database (default `postgres`).
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// The port (default 5432).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Token validity, 1 s to 1 week (default 900 s).
    pub fn token_duration(mut self, duration: Duration) -> Self {
        self.token_duration = Some(duration);
        self
    }

    /// Connect to this address instead of resolving the host.
    pub fn hostaddr(mut self, addr: IpAddr) -> Self {
        self.hostaddr = Some(addr);
        self
    }

    /// Connect timeout; `Duration::ZERO` means "no timeout" (libpq's
    /// `connect_timeout=0`).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// `application_name` reported to the server.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// AWS profile for credentials.
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// Extra PEM file of trusted CA certificates.
    pub fn ssl_root_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssl_root_cert = Some(path.into());
        self
    }

    /// How TLS is negotiated (default: PostgreSQL's `SSLRequest`).
    pub fn ssl_negotiation(mut self, negotiation: SslNegotiation) -> Self {
        self.ssl_negotiation = negotiation;
        self
    }

    /// Validates and builds the configuration.
    pub fn build(self) -> Result<DsqlConfig, ConfigError> {
        let endpoint = match self.endpoint {
            None => return Err(ConfigError::MissingHost),
            Some(EndpointInput::Host(host)) => Endpoint::parse(&host, self.region.as_deref())?,
            Some(EndpointInput::Parsed(endpoint)) => match &self.region {
                Some(region) => Endpoint::parse(endpoint.host(), Some(region))?,
                None => endpoint,
            },
        };
        let user = self.user.unwrap_or_else(|| DEFAULT_USER.to_owned());
        validate_identifier("user", &user)?;
        let database = self.database.unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        validate_identifier("database", &database)?;
        let port = self.port.unwrap_or(DEFAULT_PORT);
        if port == 0 {
            return Err(ConfigError::InvalidValue {
                name: "port",
                value: "0".to_owned(),
                expected: "a port from 1 to 65535",
            });
        }
        let token_duration = self.token_duration.unwrap_or(DEFAULT_TOKEN_DURATION);
        if token_duration < Duration::from_secs(1) || token_duration > MAX_TOKEN_DURATION {
            return Err(ConfigError::TokenDurationOutOfRange {
                secs: token_duration.as_secs(),
            });
        }
        if let Some(name) = &self.application_name {
            validate_identifier("application_name", name)?;
        }
        Ok(DsqlConfig {
            endpoint,
            user,
            database,
            port,
            // X-Amz-Expires is whole seconds.
            token_duration: Duration::from_secs(token_duration.as_secs()),
            hostaddr: self.hostaddr,
            connect_timeout: self.connect_timeout,
            application_name: self.application_name,
            profile: self.profile,
            ssl_root_cert: self.ssl_root_cert,
            ssl_negotiation: self.ssl_negotiation,
        })
    }
}

fn validate_identifier(name: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::InvalidValue {
            name,
            value: String::new(),
            expected: "a non-empty name",
        });
    }
    if value.contains('\0') {
        return Err(ConfigError::InvalidValue {
            name,
            value: value.replace('\0', "\\0"),
            expected: "a name without NUL characters",
        });
    }
    Ok(())
}
