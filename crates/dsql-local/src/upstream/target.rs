//! The upstream's URL: where it is and who to log in as.

use std::fmt;
use std::path::{Path, PathBuf};

use super::UpstreamError;
use super::require_auth::RequireAuth;
use crate::error::ConfigError;

/// Where the upstream PostgreSQL listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UpstreamAddr {
    Tcp {
        host: String,
        port: u16,
    },
    /// A Unix-domain socket, named as libpq names it: the directory, and
    /// the port in the file name (`<dir>/.s.PGSQL.<port>`).
    Unix {
        dir: PathBuf,
        port: u16,
    },
}

/// The socket file of a PostgreSQL listening in `dir` on `port`.
pub(crate) fn socket_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

/// Where the upstream PostgreSQL is and who to log in as.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UpstreamTarget {
    addr: UpstreamAddr,
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
    /// where the parameters may be `sslmode=disable`, `require_auth`
    /// ([`RequireAuth::parse`]) and, as in libpq, `host`. A host that
    /// starts with `/` (`?host=/var/run/postgresql`, or percent-encoded in
    /// the URL's host) is the directory of a Unix-domain socket: on one
    /// machine it costs PostgreSQL about half what loopback TCP does.
    pub(crate) fn parse(input: &str) -> Result<Self, ConfigError> {
        let url = url::Url::parse(input).map_err(|error| match error {
            url::ParseError::EmptyHost => ConfigError::upstream(
                "empty host (for a Unix-domain socket, percent-encode its directory as the host, \
                 postgres://user@%2Fvar%2Frun%2Fpostgresql/db, or give any host and \
                 ?host=/var/run/postgresql)",
            ),
            error => ConfigError::upstream(error.to_string()),
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(ConfigError::upstream(format!(
                "unsupported scheme `{}`: use postgres://",
                url.scheme()
            )));
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let mut host = match url.host() {
            Some(url::Host::Domain(d)) => Some(decode(d)),
            Some(url::Host::Ipv4(ip)) => Some(ip.to_string()),
            Some(url::Host::Ipv6(ip)) => Some(ip.to_string()),
            None => None,
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
                ("host", value) => host = Some(value.to_owned()),
                (name, _) => {
                    return Err(ConfigError::upstream(format!(
                        "unsupported parameter `{name}`: the upstream connection is plain TCP \
                         or a Unix-domain socket (only sslmode=disable, require_auth and host \
                         are accepted)"
                    )));
                }
            }
        }
        let port = url.port().unwrap_or(5432);
        let addr = match host.filter(|host| !host.is_empty()) {
            None => return Err(ConfigError::upstream("no host")),
            Some(host) if host.contains(',') => {
                return Err(ConfigError::upstream(format!(
                    "`{host}`: one host only (dsql-local does not try a list of hosts)"
                )));
            }
            Some(dir) if dir.starts_with('/') => {
                if !cfg!(unix) {
                    return Err(ConfigError::upstream(format!(
                        "`{dir}`: Unix-domain sockets are not supported on this platform"
                    )));
                }
                UpstreamAddr::Unix {
                    dir: PathBuf::from(dir),
                    port,
                }
            }
            Some(host) if host.contains('/') => {
                return Err(ConfigError::upstream(format!(
                    "`{host}`: a socket directory must be an absolute path"
                )));
            }
            Some(host) => UpstreamAddr::Tcp { host, port },
        };
        Ok(Self {
            addr,
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
        let (host, port) = match &self.addr {
            UpstreamAddr::Tcp { host, port } if host.contains(':') => (format!("[{host}]"), port),
            UpstreamAddr::Tcp { host, port } => (host.clone(), port),
            UpstreamAddr::Unix { dir, port } => {
                let dir = dir.to_string_lossy();
                let encoded = percent_encoding::utf8_percent_encode(&dir, percent_encoding::NON_ALPHANUMERIC);
                (encoded.to_string(), port)
            }
        };
        let query = if self.require_auth_given {
            format!("?require_auth={}", self.require_auth)
        } else {
            String::new()
        };
        format!(
            "postgres://{}{password}@{host}:{port}/{}{query}",
            self.user, self.database
        )
    }

    /// Where to connect.
    pub(crate) fn addr(&self) -> &UpstreamAddr {
        &self.addr
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
        let tcp = |host: &str, port| UpstreamAddr::Tcp {
            host: host.to_owned(),
            port,
        };
        let t = UpstreamTarget::parse("postgres://postgres@127.0.0.1:5432/postgres").expect("valid");
        assert_eq!(
            (t.addr(), t.user.as_str(), t.database.as_str()),
            (&tcp("127.0.0.1", 5432), "postgres", "postgres")
        );
        assert_eq!(t.password, None);

        let t = UpstreamTarget::parse("postgresql://app:p%40ss@db.local/app_db").expect("valid");
        assert_eq!(t.addr(), &tcp("db.local", 5432));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert_eq!(t.redacted_url(), "postgres://app:***@db.local:5432/app_db");
        assert!(!format!("{t:?}").contains("p@ss"));

        let t = UpstreamTarget::parse("postgres://[::1]:6543").expect("valid");
        assert_eq!(t.addr(), &tcp("::1", 6543));
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

    #[test]
    fn parses_unix_socket_upstreams_as_libpq_does() {
        let socket = |dir: &str, port| UpstreamAddr::Unix {
            dir: PathBuf::from(dir),
            port,
        };
        for url in [
            "postgres:///postgres?host=/var/run/postgresql",
            "postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres",
            "postgres://postgres@127.0.0.1/postgres?host=/var/run/postgresql",
        ] {
            let t = UpstreamTarget::parse(url).expect(url);
            assert_eq!(t.addr(), &socket("/var/run/postgresql", 5432), "{url}");
            assert_eq!(
                socket_path(Path::new("/var/run/postgresql"), 5432),
                PathBuf::from("/var/run/postgresql/.s.PGSQL.5432")
            );
            assert_eq!(t.user, "postgres");
            assert_eq!(t.database, "postgres");
        }
        let t = UpstreamTarget::parse("postgres://app:secret@localhost:6543/db?host=/tmp&require_auth=md5")
            .expect("valid");
        assert_eq!(t.addr(), &socket("/tmp", 6543));
        assert_eq!(
            t.redacted_url(),
            "postgres://app:***@%2Ftmp:6543/db?require_auth=md5"
        );
        let again = UpstreamTarget::parse(&t.redacted_url().replace("***", "secret")).expect("round trip");
        assert!(again == t, "{again:?}");
        let tcp = UpstreamAddr::Tcp {
            host: "tcp.example".to_owned(),
            port: 5432,
        };
        assert_eq!(
            UpstreamTarget::parse("postgres://u@h/db?host=tcp.example")
                .expect("valid")
                .addr(),
            &tcp
        );
        assert!(UpstreamTarget::parse("postgres:///db").is_err());
        assert!(UpstreamTarget::parse("postgres://u@h/db?host=").is_err());
        let refused = |url: &str| UpstreamTarget::parse(url).expect_err(url).to_string();
        assert!(refused("postgres://u@h/db?host=/a,/b").contains("one host only"));
        assert!(refused("postgres://u@h/db?host=var/run").contains("absolute path"));
        assert!(refused("postgres://u@/db?host=/tmp").contains("percent-encode"));
        // The last `host` wins, as in libpq, over an IPv6 host too.
        let t = UpstreamTarget::parse("postgres://u:pw@[::1]/db?host=/a&host=/b").expect("valid");
        assert_eq!(t.addr(), &socket("/b", 5432));
        assert!(!format!("{t:?}").contains("pw"), "{t:?}");
    }
}
