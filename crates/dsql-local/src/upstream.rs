//! The upstream PostgreSQL: its URL, and opening an authenticated session
//! (trust, SCRAM-SHA-256, md5 or cleartext password, with `postgres-protocol`).

use std::fmt;
use std::io;

use bytes::BytesMut;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::frontend;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::error::ConfigError;
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

    /// The password, when the upstream asks for one.
    fn password(&self) -> Result<&str, UpstreamError> {
        self.password.as_deref().ok_or(UpstreamError::PasswordRequired)
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
         allow trust, scram-sha-256, md5 or password authentication for its connections"
    )]
    UnsupportedAuth(&'static str),
    #[error("the upstream PostgreSQL asks for a password but the upstream URL has none")]
    PasswordRequired,
    #[error("SCRAM-SHA-256 authentication with the upstream PostgreSQL failed: {0}")]
    Scram(#[source] io::Error),
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
    let mut out = BytesMut::new();
    let mut greeting = Vec::new();
    let mut backend_key = None;
    let mut authenticated = false;
    // A SCRAM exchange in progress, and whether the server proved that it
    // knows the password (`AuthenticationSASLFinal` verified).
    let mut scram: Option<ScramSha256> = None;
    let mut scram_verified = false;
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
                let (code, data) = auth_request(body)?;
                out.clear();
                match code {
                    AUTH_OK => {
                        if scram.is_some() && !scram_verified {
                            return Err(UpstreamError::Scram(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "the server ended the exchange without proving that it knows the password",
                            )));
                        }
                        authenticated = true;
                    }
                    AUTH_CLEARTEXT => {
                        let password = target.password()?;
                        frontend::password_message(password.as_bytes(), &mut out).map_err(protocol_io)?;
                    }
                    AUTH_MD5 => {
                        let password = target.password()?;
                        let salt: [u8; 4] = data
                            .get(..4)
                            .and_then(|s| s.try_into().ok())
                            .ok_or(ProtocolError::Malformed("authentication"))?;
                        let response = md5_hash(role.as_bytes(), password.as_bytes(), salt);
                        frontend::password_message(response.as_bytes(), &mut out).map_err(protocol_io)?;
                    }
                    AUTH_SASL => {
                        if !sasl_mechanisms(data)?.contains(&SCRAM_SHA_256.as_bytes()) {
                            return Err(UpstreamError::UnsupportedAuth(
                                "SASL without SCRAM-SHA-256 (only SCRAM-SHA-256-PLUS?)",
                            ));
                        }
                        let password = target.password()?;
                        // Plain TCP: there is no TLS channel to bind to.
                        let exchange = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
                        frontend::sasl_initial_response(SCRAM_SHA_256, exchange.message(), &mut out)
                            .map_err(protocol_io)?;
                        scram = Some(exchange);
                    }
                    AUTH_SASL_CONTINUE => {
                        let exchange = scram.as_mut().ok_or(ProtocolError::Malformed("authentication"))?;
                        exchange.update(data).map_err(UpstreamError::Scram)?;
                        frontend::sasl_response(exchange.message(), &mut out).map_err(protocol_io)?;
                    }
                    AUTH_SASL_FINAL => {
                        let exchange = scram.as_mut().ok_or(ProtocolError::Malformed("authentication"))?;
                        exchange.finish(data).map_err(UpstreamError::Scram)?;
                        scram_verified = true;
                    }
                    2 => return Err(UpstreamError::UnsupportedAuth("Kerberos")),
                    7 | 8 => return Err(UpstreamError::UnsupportedAuth("GSSAPI")),
                    9 => return Err(UpstreamError::UnsupportedAuth("SSPI")),
                    _ => return Err(UpstreamError::UnsupportedAuth("an unknown method")),
                }
                if !out.is_empty() {
                    stream.write_all(&out).await.map_err(UpstreamError::Connect)?;
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

const AUTH_OK: u32 = 0;
const AUTH_CLEARTEXT: u32 = 3;
const AUTH_MD5: u32 = 5;
const AUTH_SASL: u32 = 10;
const AUTH_SASL_CONTINUE: u32 = 11;
const AUTH_SASL_FINAL: u32 = 12;

/// Splits an `Authentication*` body into its code and the data after it.
fn auth_request(body: &[u8]) -> Result<(u32, &[u8]), ProtocolError> {
    match body.split_first_chunk::<4>() {
        Some((code, data)) => Ok((u32::from_be_bytes(*code), data)),
        None => Err(ProtocolError::Malformed("authentication")),
    }
}

/// The mechanism names of an `AuthenticationSASL` message.
fn sasl_mechanisms(mut data: &[u8]) -> Result<Vec<&[u8]>, ProtocolError> {
    let mut mechanisms = Vec::new();
    loop {
        let (name, rest) = protocol::cstr(data).ok_or(ProtocolError::Malformed("authentication"))?;
        if name.is_empty() {
            return Ok(mechanisms);
        }
        mechanisms.push(name);
        data = rest;
    }
}

/// `postgres_protocol`'s writers fail only on a length over `i32::MAX` or a
/// NUL inside a string (a password with a NUL).
fn protocol_io(error: io::Error) -> UpstreamError {
    UpstreamError::Protocol(ProtocolError::Io(error))
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
