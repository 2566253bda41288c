//! The upstream's URL: where it is and who to log in as.

use std::fmt;

use super::UpstreamError;
use super::require_auth::RequireAuth;
use crate::error::ConfigError;

/// Where the upstream PostgreSQL is and who to log in as.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UpstreamTarget {
    host: String,
    port: u16,
    pub(crate) user: String,
    password: Option<String>,
    pub(crate) database: String,
    /// The methods the upstream may authenticate with.
    pub(super) require_auth: RequireAuth,
    /// Whether `require_auth` was in the URL (rather than the default).
    require_auth_given: bool,
}

impl fmt::Debug for UpstreamTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted_url())
    }
}

impl UpstreamTarget {
    /// Parses `postgres://user[:password]@host[:port][/database][?params]`,
    /// where the parameters may be `sslmode=disable` and `require_auth`
    /// ([`RequireAuth::parse`]).
    pub(crate) fn parse(input: &str) -> Result<Self, ConfigError> {
        let url = url::Url::parse(input).map_err(|e| ConfigError::upstream(e.to_string()))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(ConfigError::upstream(format!(
                "unsupported scheme `{}`: use postgres://",
                url.scheme()
            )));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(ConfigError::upstream("no host")),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = match url.username() {
            "" => "postgres".to_owned(),
            user => decode(user),
        };
        let password = url.password().map(decode);
        let database = match url.path().trim_start_matches('/') {
            "" => "postgres".to_owned(),
            db => decode(db),
        };
        let mut require_auth = None;
        for (name, value) in url.query_pairs() {
            match (&*name, &*value) {
                ("sslmode", "disable") => {}
                ("require_auth", value) => require_auth = Some(RequireAuth::parse(value)?),
                (name, _) => {
                    return Err(ConfigError::upstream(format!(
                        "unsupported parameter `{name}`: the upstream connection is plain TCP \
                         (only sslmode=disable and require_auth are accepted)"
                    )));
                }
            }
        }
        Ok(Self {
            host,
            port: url.port().unwrap_or(5432),
            user,
            require_auth: require_auth.unwrap_or(RequireAuth::default_for(password.is_some())),
            require_auth_given: require_auth.is_some(),
            password,
            database,
        })
    }

    /// The URL with the password replaced by `***`.
    pub(crate) fn redacted_url(&self) -> String {
        let password = if self.password.is_some() { ":***" } else { "" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let query = if self.require_auth_given {
            format!("?require_auth={}", self.require_auth)
        } else {
            String::new()
        };
        format!(
            "postgres://{}{password}@{host}:{}/{}{query}",
            self.user, self.port, self.database
        )
    }

    /// Host and port, for connecting.
    pub(crate) fn addr(&self) -> (&str, u16) {
        (&self.host, self.port)
    }

    /// The password, when the upstream asks for one.
    pub(super) fn password(&self) -> Result<&str, UpstreamError> {
        self.password.as_deref().ok_or(UpstreamError::PasswordRequired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_urls() {
        let t = UpstreamTarget::parse("postgres://postgres@127.0.0.1:5432/postgres").expect("valid");
        assert_eq!(
            (t.addr(), t.user.as_str(), t.database.as_str()),
            (("127.0.0.1", 5432), "postgres", "postgres")
        );
        assert_eq!(t.password, None);

        let t = UpstreamTarget::parse("postgresql://app:p%40ss@db.local/app_db").expect("valid");
        assert_eq!(t.addr(), ("db.local", 5432));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert_eq!(t.redacted_url(), "postgres://app:***@db.local:5432/app_db");
        assert!(!format!("{t:?}").contains("p@ss"));

        let t = UpstreamTarget::parse("postgres://[::1]:6543").expect("valid");
        assert_eq!(t.addr(), ("::1", 6543));
        assert_eq!(t.database, "postgres");

        assert!(UpstreamTarget::parse("mysql://x").is_err());
        assert!(UpstreamTarget::parse("postgres://x/db?sslmode=require").is_err());

        let t = UpstreamTarget::parse("postgres://u:p@h/db?require_auth=scram-sha-256").expect("valid");
        assert_eq!(
            t.redacted_url(),
            "postgres://u:***@h:5432/db?require_auth=scram-sha-256"
        );
        assert!(UpstreamTarget::parse("postgres://u:p@h/db?require_auth=kerberos").is_err());
    }
}
