//! Untagged startup packets: the first packet of a connection or of its TLS
//! session.

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{CANCEL_REQUEST, GSSENC_REQUEST, PROTOCOL_3_0, ProtocolError, SSL_REQUEST, put_cstr};

/// The first packet of a connection (or of its TLS session).
#[derive(Debug)]
pub(crate) enum StartupPacket {
    Ssl,
    GssEnc,
    Cancel { pid: i32, secret: i32 },
    Startup(StartupMessage),
}

/// A `StartupMessage`: protocol version and parameters.
#[derive(Debug)]
pub(crate) struct StartupMessage {
    pub(crate) version: u32,
    pub(crate) params: Vec<(String, String)>,
}

impl StartupMessage {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// PostgreSQL's limit on startup packets (the default of
/// [`Bounds::max_startup_packet`](crate::config::Bounds::max_startup_packet)).
#[cfg(test)]
pub(crate) const MAX_STARTUP_LEN: usize = 10_000;

/// Reads one untagged startup packet of at most PostgreSQL's
/// [`MAX_STARTUP_LEN`] bytes; see [`read_startup_bounded`].
#[cfg(test)]
pub(crate) async fn read_startup<R: AsyncRead + Unpin>(r: &mut R) -> Result<StartupPacket, ProtocolError> {
    read_startup_bounded(r, MAX_STARTUP_LEN).await
}

/// Reads one untagged startup packet of at most `max_len` bytes (length word
/// included), exactly: nothing after it is consumed, so a TLS handshake can
/// follow. A length out of bounds is [`ProtocolError::BadLength`] before
/// anything is allocated for the packet.
pub(crate) async fn read_startup_bounded<R: AsyncRead + Unpin>(
    r: &mut R,
    max_len: usize,
) -> Result<StartupPacket, ProtocolError> {
    let len = r.read_u32().await? as usize;
    if !(8..=max_len).contains(&len) {
        return Err(ProtocolError::BadLength(len));
    }
    let mut body = vec![0; len - 4];
    r.read_exact(&mut body).await?;
    let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let rest = &body[4..];
    match code {
        SSL_REQUEST if rest.is_empty() => Ok(StartupPacket::Ssl),
        GSSENC_REQUEST if rest.is_empty() => Ok(StartupPacket::GssEnc),
        CANCEL_REQUEST if rest.len() == 8 => Ok(StartupPacket::Cancel {
            pid: i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]),
            secret: i32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]),
        }),
        SSL_REQUEST | GSSENC_REQUEST | CANCEL_REQUEST => Err(ProtocolError::Malformed("startup")),
        version if version >> 16 == 3 => {
            let mut params = Vec::new();
            let mut fields = rest.split(|&b| b == 0);
            loop {
                let name = fields.next().ok_or(ProtocolError::Malformed("startup"))?;
                if name.is_empty() {
                    break;
                }
                let value = fields.next().ok_or(ProtocolError::Malformed("startup"))?;
                let name =
                    String::from_utf8(name.to_vec()).map_err(|_| ProtocolError::Malformed("startup"))?;
                let value =
                    String::from_utf8(value.to_vec()).map_err(|_| ProtocolError::Malformed("startup"))?;
                params.push((name, value));
            }
            Ok(StartupPacket::Startup(StartupMessage { version, params }))
        }
        _ => Err(ProtocolError::Malformed("startup")),
    }
}

/// A `StartupMessage` (protocol 3.0) with `params`.
pub(crate) fn startup_message<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    for (name, value) in params {
        put_cstr(&mut out, name.as_bytes());
        put_cstr(&mut out, value.as_bytes());
    }
    out.push(0);
    let len = u32::try_from(out.len()).unwrap_or(u32::MAX);
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}
