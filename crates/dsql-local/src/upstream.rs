//! The upstream PostgreSQL: its URL, and opening an authenticated session.

use std::fmt;
use std::io;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::error::ConfigError;
use crate::md5;
use crate::protocol::{self, FrameReader, ProtocolError};

/// The isolation level of every upstream session: DSQL runs transactions at
/// repeatable read (snapshot isolation).
pub(crate) const ISOLATION: &str = "repeatable read";

/// Where the upstream PostgreSQL is and who to log in as.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UpstreamTarget {
    host: String,
    port: u16,
    pub(crate) user: String,
    password: Option<String>,
    pub(crate) database: String,
}

impl fmt::Debug for UpstreamTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted_url())
    }
}

impl UpstreamTarget {
    /// Parses `postgres://user[:password]@host[:port][/database]`.
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
        for (name, value) in url.query_pairs() {
            match (&*name, &*value) {
                ("sslmode", "disable") => {}
                (name, _) => {
                    return Err(ConfigError::upstream(format!(
                        "unsupported parameter `{name}`: the upstream connection is plain TCP \
                         (only sslmode=disable is accepted)"
                    )));
                }
            }
        }
        Ok(Self {
            host,
            port: url.port().unwrap_or(5432),
            user,
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
        format!(
            "postgres://{}{password}@{host}:{}/{}",
            self.user, self.port, self.database
        )
    }

    /// Host and port, for connecting.
    pub(crate) fn addr(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
}

/// Why an upstream session could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("could not connect to the upstream PostgreSQL: {0}")]
    Connect(#[source] io::Error),
    #[error("timed out connecting to the upstream PostgreSQL")]
    Timeout,
    #[error("the upstream PostgreSQL refused the session")]
    Refused {
        /// The upstream's `ErrorResponse`, to forward as is.
        error: Vec<u8>,
    },
    #[error(
        "the upstream PostgreSQL asks for {0} authentication, which dsql-local does not support: \
         allow trust, password or md5 authentication for its connections"
    )]
    UnsupportedAuth(&'static str),
    #[error("the upstream PostgreSQL asks for a password but the upstream URL has none")]
    PasswordRequired,
    #[error("protocol error with the upstream PostgreSQL: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("the upstream PostgreSQL closed the connection during startup")]
    Closed,
}

/// An authenticated upstream session, ready for queries.
#[derive(Debug)]
pub(crate) struct UpstreamSession {
    pub(crate) stream: TcpStream,
    /// Holds any bytes read past the greeting.
    pub(crate) reader: FrameReader,
    /// `ParameterStatus`, `BackendKeyData`, notices and the final
    /// `ReadyForQuery`, to forward to the client.
    pub(crate) greeting: Vec<u8>,
    /// The upstream backend's cancel key (process id, secret).
    pub(crate) backend_key: Option<(i32, i32)>,
}

/// Startup parameters never forwarded from the client.
fn forwarded(name: &str) -> bool {
    !matches!(
        name,
        "user" | "database" | "replication" | "default_transaction_isolation"
    ) && !name.starts_with("_pq_.")
}

/// Opens a session as `role` on `database`, with the client's other startup
/// parameters and `default_transaction_isolation = repeatable read`.
pub(crate) async fn connect(
    target: &UpstreamTarget,
    role: &str,
    database: &str,
    client_params: &[(String, String)],
) -> Result<UpstreamSession, UpstreamError> {
    let mut stream = TcpStream::connect(target.addr())
        .await
        .map_err(UpstreamError::Connect)?;
    stream.set_nodelay(true).map_err(UpstreamError::Connect)?;
    let params = [("user", role), ("database", database)]
        .into_iter()
        .chain(
            client_params
                .iter()
                .filter(|(n, _)| forwarded(n))
                .map(|(n, v)| (n.as_str(), v.as_str())),
        )
        .chain([("default_transaction_isolation", ISOLATION)]);
    stream
        .write_all(&protocol::startup_message(params))
        .await
        .map_err(UpstreamError::Connect)?;

    let mut reader = FrameReader::new();
    let mut out = Vec::new();
    let mut greeting = Vec::new();
    let mut backend_key = None;
    let mut authenticated = false;
    loop {
        let Some(frame) = reader.next_frame()? else {
            if reader.fill(&mut stream).await.map_err(UpstreamError::Connect)? == 0 {
                return Err(UpstreamError::Closed);
            }
            continue;
        };
        let body = reader.body(&frame);
        match frame.tag {
            b'E' => {
                return Err(UpstreamError::Refused {
                    error: reader.bytes(&frame).to_vec(),
                });
            }
            b'R' if !authenticated => {
                let code = body
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or(ProtocolError::Malformed("authentication"))?;
                match code {
                    0 => authenticated = true,
                    3 => {
                        let password = target
                            .password
                            .as_deref()
                            .ok_or(UpstreamError::PasswordRequired)?;
                        out.clear();
                        protocol::put_message(&mut out, b'p', |o| protocol::put_cstr(o, password.as_bytes()));
                        stream.write_all(&out).await.map_err(UpstreamError::Connect)?;
                    }
                    5 => {
                        let password = target
                            .password
                            .as_deref()
                            .ok_or(UpstreamError::PasswordRequired)?;
                        let salt: [u8; 4] = body
                            .get(4..8)
                            .and_then(|s| s.try_into().ok())
                            .ok_or(ProtocolError::Malformed("authentication"))?;
                        let response = md5::postgres_password(role, password, salt);
                        out.clear();
                        protocol::put_message(&mut out, b'p', |o| protocol::put_cstr(o, response.as_bytes()));
                        stream.write_all(&out).await.map_err(UpstreamError::Connect)?;
                    }
                    10 => return Err(UpstreamError::UnsupportedAuth("SASL (SCRAM-SHA-256)")),
                    2 => return Err(UpstreamError::UnsupportedAuth("Kerberos")),
                    7 | 8 => return Err(UpstreamError::UnsupportedAuth("GSSAPI")),
                    9 => return Err(UpstreamError::UnsupportedAuth("SSPI")),
                    _ => return Err(UpstreamError::UnsupportedAuth("an unknown method")),
                }
            }
            b'N' if !authenticated => {}
            tag if !authenticated => return Err(ProtocolError::Unexpected(char::from(tag)).into()),
            b'K' => {
                if let (Some(pid), Some(secret)) = (body.get(..4), body.get(4..8)) {
                    backend_key = Some((
                        i32::from_be_bytes([pid[0], pid[1], pid[2], pid[3]]),
                        i32::from_be_bytes([secret[0], secret[1], secret[2], secret[3]]),
                    ));
                }
                greeting.extend_from_slice(reader.bytes(&frame));
            }
            b'Z' => {
                greeting.extend_from_slice(reader.bytes(&frame));
                return Ok(UpstreamSession {
                    stream,
                    reader,
                    greeting,
                    backend_key,
                });
            }
            _ => greeting.extend_from_slice(reader.bytes(&frame)),
        }
    }
}

/// Relays a cancel request to the upstream.
pub(crate) async fn cancel(target: &UpstreamTarget, pid: i32, secret: i32) -> io::Result<()> {
    let mut stream = TcpStream::connect(target.addr()).await?;
    let mut packet = Vec::with_capacity(16);
    packet.extend_from_slice(&16_u32.to_be_bytes());
    packet.extend_from_slice(&protocol::CANCEL_REQUEST.to_be_bytes());
    packet.extend_from_slice(&pid.to_be_bytes());
    packet.extend_from_slice(&secret.to_be_bytes());
    stream.write_all(&packet).await?;
    stream.shutdown().await
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
    }
}
