//! Opening an authenticated upstream session: startup, then trust,
//! SCRAM-SHA-256 (without channel binding: the connection is plain TCP or a
//! Unix-domain socket), md5
//! or cleartext password authentication, up to the first `ReadyForQuery`.

use std::io;

use bytes::BytesMut;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::frontend;
use tokio::io::AsyncWriteExt;

use super::require_auth::AuthMethod;
use super::{ISOLATION, UpstreamError, UpstreamSession, UpstreamTarget};
use crate::protocol::{self, FrameReader, ProtocolError};

/// The client startup parameters forwarded upstream (compared without
/// regard to case, as PostgreSQL does): harmless session settings that a
/// client could also `SET`. Everything else (`options`, which can set any
/// GUC before authentication is checked, `replication`, `user`, `database`,
/// `_pq_.*`, …) is dropped.
const FORWARDED_PARAMS: &[&str] = &[
    "application_name",
    "client_encoding",
    "datestyle",
    "timezone",
    "intervalstyle",
    "extra_float_digits",
    "search_path",
];

/// Whether a client startup parameter is forwarded upstream.
pub(crate) fn forwarded(name: &str) -> bool {
    FORWARDED_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// Whether the upstream may be answered with the upstream URL's password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Password {
    /// Logging in as the upstream URL's user: answer with its password.
    FromUrl,
    /// Logging in as another role: the URL's password is not this role's, so
    /// a password request fails with [`UpstreamError::PasswordRequested`].
    Never,
}

/// Opens a session as `role` on `database`, with the client's allowed
/// startup parameters ([`forwarded`]), dsql-local's own `settings` and
/// `default_transaction_isolation = repeatable read`.
pub(crate) async fn connect(
    target: &UpstreamTarget,
    role: &str,
    password: Password,
    database: &str,
    client_params: &[(String, String)],
    settings: &[(&str, String)],
) -> Result<UpstreamSession, UpstreamError> {
    let mut stream = super::stream::connect(target.addr())
        .await
        .map_err(UpstreamError::Connect)?;
    let params = [("user", role), ("database", database)]
        .into_iter()
        .chain(
            client_params
                .iter()
                .filter(|(n, _)| forwarded(n))
                .map(|(n, v)| (n.as_str(), v.as_str())),
        )
        .chain(settings.iter().map(|(n, v)| (*n, v.as_str())))
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
    // The method the upstream asked for first (`None`: not asked yet).
    let mut asked: Option<AuthMethod> = None;
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
                // Checked before anything is answered, as libpq does: the
                // password never goes out by a method that was not allowed.
                let method = match code {
                    AUTH_OK if asked.is_none() => Some(AuthMethod::None),
                    AUTH_CLEARTEXT => Some(AuthMethod::Password),
                    AUTH_MD5 => Some(AuthMethod::Md5),
                    AUTH_SASL => Some(AuthMethod::ScramSha256),
                    _ => None,
                };
                if let Some(method) = method {
                    if !target.require_auth.allows(method) {
                        return Err(UpstreamError::MethodNotAllowed {
                            asked: method.name(),
                            allowed: target.require_auth.to_string(),
                        });
                    }
                    asked.get_or_insert(method);
                }
                if password == Password::Never && matches!(code, AUTH_CLEARTEXT | AUTH_MD5 | AUTH_SASL) {
                    return Err(UpstreamError::PasswordRequested {
                        role: role.to_owned(),
                    });
                }
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
                        let secret = target.password()?;
                        frontend::password_message(secret.as_bytes(), &mut out).map_err(protocol_io)?;
                    }
                    AUTH_MD5 => {
                        let secret = target.password()?;
                        let salt: [u8; 4] = data
                            .get(..4)
                            .and_then(|s| s.try_into().ok())
                            .ok_or(ProtocolError::Malformed("authentication"))?;
                        let response = md5_hash(role.as_bytes(), secret.as_bytes(), salt);
                        frontend::password_message(response.as_bytes(), &mut out).map_err(protocol_io)?;
                    }
                    AUTH_SASL => {
                        if !sasl_mechanisms(data)?.contains(&SCRAM_SHA_256.as_bytes()) {
                            return Err(UpstreamError::UnsupportedAuth(
                                "SASL without SCRAM-SHA-256 (only SCRAM-SHA-256-PLUS?)",
                            ));
                        }
                        let secret = target.password()?;
                        // No TLS: there is no channel to bind to.
                        let exchange = ScramSha256::new(secret.as_bytes(), ChannelBinding::unsupported());
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

#[cfg(test)]
mod tests {
    use super::forwarded;

    #[test]
    fn only_harmless_startup_parameters_are_forwarded() {
        for name in [
            "application_name",
            "client_encoding",
            "DateStyle",
            "TimeZone",
            "IntervalStyle",
            "extra_float_digits",
            "search_path",
        ] {
            assert!(forwarded(name), "{name}");
        }
        for name in [
            "options",
            "replication",
            "user",
            "database",
            "default_transaction_isolation",
            "session_authorization",
            "role",
            "session_replication_role",
            "_pq_.future",
            "",
        ] {
            assert!(!forwarded(name), "{name}");
        }
    }
}
