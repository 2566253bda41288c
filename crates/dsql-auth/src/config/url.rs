//! Configuration from a connection URL.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::PathBuf;

use url::Url;

use super::authority::{Authority, clean};
use super::{DsqlConfig, SslNegotiation, parse_hostaddr, parse_secs};
use crate::ConfigError;

impl DsqlConfig {
    /// Parses `postgres://[user@]host[:port][/database][?param=value&…]`
    /// (`postgresql://` and `dsql://` too).
    ///
    /// Parameters: `region`, `profile`, `tokenDurationSecs`,
    /// `application_name` (or `applicationName`), `sslmode` (only
    /// `verify-full`, the default), `sslrootcert`, `sslnegotiation`
    /// (`postgres` or `direct`), `hostaddr`, `connect_timeout` (whole seconds; 0 means no timeout). Any
    /// other parameter is an error naming it, and so is a password: DSQL
    /// authenticates with tokens. So are several hosts: read libpq's
    /// multi-host form (`host1,host2`, a multi-region cluster) with
    /// [`ClusterSet::from_url`](crate::ClusterSet::from_url).
    ///
    /// ```
    /// use dsql_auth::{ConfigError, DsqlConfig};
    ///
    /// let config = DsqlConfig::from_url("dsql://admin@localhost:15432/postgres?region=us-east-1&hostaddr=127.0.0.1")?;
    /// assert_eq!(config.endpoint().host(), "localhost");
    /// assert_eq!(config.port(), 15432);
    ///
    /// let err = DsqlConfig::from_url("postgres://admin:hunter2@abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws")
    ///     .unwrap_err();
    /// assert_eq!(err, ConfigError::PasswordInUrl);
    /// assert!(!err.to_string().contains("hunter2"));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let raw = clean(url);
        let raw = raw.as_ref();
        if password_in_user_info(raw) {
            return Err(ConfigError::PasswordInUrl);
        }
        if Authority::split(raw).is_some_and(|authority| authority.hosts.len() > 1) {
            // Before the URL parser, which reads `h1:5432,h2` as a bad port.
            return Err(several_hosts());
        }
        if let Some(segment) = raw_database(raw)
            && matches!(
                segment.to_ascii_lowercase().as_str(),
                "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
            )
        {
            return Err(ConfigError::InvalidUrl {
                reason: "the database name cannot be `.` or `..` (URL dot segments)".to_owned(),
            });
        }
        let url = Url::parse(raw).map_err(|e| ConfigError::InvalidUrl {
            reason: e.to_string(),
        })?;
        match url.scheme() {
            "postgres" | "postgresql" | "dsql" => {}
            scheme => {
                return Err(ConfigError::UnsupportedScheme {
                    scheme: scheme.to_owned(),
                });
            }
        }
        if url.password().is_some() {
            return Err(ConfigError::PasswordInUrl);
        }
        if url.fragment().is_some() {
            return Err(ConfigError::InvalidUrl {
                reason: "a connection URL has no `#fragment`".to_owned(),
            });
        }

        let mut builder = Self::builder();
        match url.host_str() {
            Some(host) if !host.is_empty() => {
                if host.contains(',') {
                    return Err(several_hosts());
                }
                builder = builder.host(host.trim_start_matches('[').trim_end_matches(']'));
            }
            _ => return Err(ConfigError::MissingHost),
        }
        if let Some(port) = url.port() {
            builder = builder.port(port);
        }
        if !url.username().is_empty() {
            builder = builder.user(decode("user", url.username())?);
        }
        let database = url.path().trim_start_matches('/');
        if database.contains('/') {
            return Err(ConfigError::InvalidUrl {
                reason: "the path must be a single database name".to_owned(),
            });
        }
        if !database.is_empty() {
            builder = builder.database(decode("database", database)?);
        }

        let mut seen = HashSet::new();
        for (name, value) in url.query_pairs() {
            if name == "password" {
                return Err(ConfigError::PasswordInUrl);
            }
            let canonical = canonical_parameter(&name).ok_or_else(|| ConfigError::UnknownParameter {
                name: shown_parameter_name(&name),
            })?;
            if !seen.insert(canonical) {
                return Err(ConfigError::DuplicateParameter {
                    name: name.into_owned(),
                });
            }
            builder = match canonical {
                "region" => builder.region(value),
                "profile" => builder.profile(value),
                "tokenDurationSecs" => builder.token_duration(parse_secs(canonical, &value)?),
                "application_name" => builder.application_name(value),
                "sslmode" if value == "verify-full" => builder,
                "sslmode" => {
                    return Err(ConfigError::UnsupportedSslMode {
                        value: value.into_owned(),
                    });
                }
                "sslrootcert" => builder.ssl_root_cert(PathBuf::from(value.as_ref())),
                "sslnegotiation" => builder.ssl_negotiation(value.parse::<SslNegotiation>()?),
                "hostaddr" => builder.hostaddr(parse_hostaddr(canonical, &value)?),
                "connect_timeout" => builder.connect_timeout(parse_secs(canonical, &value)?),
                _ => unreachable!("canonical_parameter returns only the names above"),
            };
        }
        builder.build()
    }
}

fn canonical_parameter(name: &str) -> Option<&'static str> {
    Some(match name {
        "region" => "region",
        "profile" => "profile",
        "tokenDurationSecs" | "token_duration_secs" => "tokenDurationSecs",
        "application_name" | "applicationName" => "application_name",
        "sslmode" => "sslmode",
        "sslrootcert" => "sslrootcert",
        "sslnegotiation" => "sslnegotiation",
        "hostaddr" => "hostaddr",
        "connect_timeout" => "connect_timeout",
        _ => return None,
    })
}

fn decode(name: &'static str, value: &str) -> Result<String, ConfigError> {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| ConfigError::InvalidValue {
            name,
            value: value.to_owned(),
            expected: "percent-encoded UTF-8",
        })
}

fn several_hosts() -> ConfigError {
    ConfigError::InvalidUrl {
        reason: "it lists several hosts, and a DsqlConfig is one endpoint: read a multi-region URL \
                 (`host1,host2`) with ClusterSet::from_url"
            .to_owned(),
    }
}

/// Whether `raw` (already [`clean`]ed) carries a password in its user info,
/// as the URL parser reads it or cut short by a `?` or `#`.
pub(super) fn password_in_user_info(raw: &str) -> bool {
    // `admin:pa?ss@host`: the URL parser ends the authority at the `?`, and
    // the password would turn up as a parameter name.
    password_before_query(raw)
        // `a@b:pass@host`: the parser's user info runs to the last `@`.
        || Authority::split(raw).is_some_and(|authority| authority.user_info.is_some_and(|u| u.contains(':')))
}

/// Whether the user info of `raw` (before the first `@`, with no `/` in
/// between) holds a `:`, i.e. a password, even one the URL parser would
/// cut at a `?` or `#`.
fn password_before_query(raw: &str) -> bool {
    let Some((_, rest)) = raw.split_once("://") else {
        return false;
    };
    match rest.split_once('@') {
        Some((user_info, _)) => {
            !user_info.contains('/') && !user_info.contains('[') && user_info.contains(':')
        }
        None => false,
    }
}

/// The path segment of `raw` as written (before the URL parser resolves
/// dot segments).
fn raw_database(raw: &str) -> Option<&str> {
    let (_, rest) = raw.split_once("://")?;
    let (_, path) = rest.split_once('/')?;
    Some(path.split(['?', '#']).next().unwrap_or(""))
}

/// A parameter name as an error may show it: a name made of other
/// characters may be a piece of a password or other text cut from the URL,
/// and is not echoed.
fn shown_parameter_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain {
        name.to_owned()
    } else {
        "(not shown: not a parameter name)".to_owned()
    }
}
