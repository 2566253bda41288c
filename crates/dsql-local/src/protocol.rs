//! PostgreSQL v3 wire protocol: startup packets, framed messages, and the
//! few messages `dsql-local` writes itself.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::catalog::{DsqlError, Severity};

/// `SSLRequest` code.
pub(crate) const SSL_REQUEST: u32 = 80_877_103;
/// `GSSENCRequest` code.
pub(crate) const GSSENC_REQUEST: u32 = 80_877_104;
/// `CancelRequest` code.
pub(crate) const CANCEL_REQUEST: u32 = 80_877_102;
/// Protocol 3.0.
pub(crate) const PROTOCOL_3_0: u32 = 196_608;
/// First byte of a TLS handshake record (direct TLS).
pub(crate) const TLS_HANDSHAKE: u8 = 0x16;
/// PostgreSQL's limit on startup packets.
const MAX_STARTUP_LEN: usize = 10_000;
/// Largest message accepted (PostgreSQL's own limit is 1 GiB).
pub(crate) const MAX_MESSAGE_LEN: usize = 1 << 30;
/// Read granularity of [`FrameReader`].
const READ_CHUNK: usize = 16 * 1024;
/// Buffers larger than this are shrunk once empty.
const KEEP_CAPACITY: usize = 1 << 20;

/// A malformed or unexpected message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProtocolError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("invalid message length {0}")]
    BadLength(usize),
    #[error("malformed {0} message")]
    Malformed(&'static str),
    #[error("unexpected message type {0:?}")]
    Unexpected(char),
}

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

/// Reads one untagged startup packet, exactly (nothing after it is consumed,
/// so a TLS handshake can follow).
pub(crate) async fn read_startup<R: AsyncRead + Unpin>(r: &mut R) -> Result<StartupPacket, ProtocolError> {
    let len = r.read_u32().await? as usize;
    if !(8..=MAX_STARTUP_LEN).contains(&len) {
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

/// Reads one tagged message of at most `max_len` bytes, exactly; returns its
/// tag and body.
pub(crate) async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
    max_len: usize,
) -> Result<(u8, Vec<u8>), ProtocolError> {
    let tag = r.read_u8().await?;
    let len = r.read_u32().await? as usize;
    if len < 4 || len > max_len {
        return Err(ProtocolError::BadLength(len));
    }
    let mut body = vec![0; len - 4];
    r.read_exact(&mut body).await?;
    Ok((tag, body))
}

/// A complete message inside a [`FrameReader`]'s buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    pub(crate) tag: u8,
    start: usize,
    end: usize,
}

/// Splits a byte stream into tagged messages, reusing one buffer.
///
/// [`fill`](Self::fill) is cancel-safe: bytes read stay in the buffer.
#[derive(Debug)]
pub(crate) struct FrameReader {
    buf: Vec<u8>,
    pos: usize,
}

impl FrameReader {
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
        }
    }

    /// Reads more bytes; `Ok(0)` at end of stream.
    pub(crate) async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf.shrink_to(READ_CHUNK);
            }
        } else if self.pos > 0 && self.buf.capacity() - self.buf.len() < READ_CHUNK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        r.read_buf(&mut self.buf).await
    }

    /// The next complete message, if the buffer holds one.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        let avail = &self.buf[self.pos..];
        if avail.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([avail[1], avail[2], avail[3], avail[4]]) as usize;
        if !(4..=MAX_MESSAGE_LEN).contains(&len) {
            return Err(ProtocolError::BadLength(len));
        }
        let total = 1 + len;
        if avail.len() < total {
            let missing = total - avail.len();
            self.buf.reserve(missing);
            return Ok(None);
        }
        let frame = Frame {
            tag: avail[0],
            start: self.pos,
            end: self.pos + total,
        };
        self.pos += total;
        Ok(Some(frame))
    }

    /// The whole message (tag, length and body).
    pub(crate) fn bytes(&self, frame: &Frame) -> &[u8] {
        &self.buf[frame.start..frame.end]
    }

    /// The message body.
    pub(crate) fn body(&self, frame: &Frame) -> &[u8] {
        &self.buf[frame.start + 5..frame.end]
    }

    /// Whether bytes of an incomplete message are buffered.
    #[cfg(test)]
    pub(crate) fn has_partial(&self) -> bool {
        self.pos < self.buf.len()
    }
}

/// Reads a NUL-terminated string at the start of `buf`; returns it and the
/// rest after the NUL.
pub(crate) fn cstr(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = buf.iter().position(|&b| b == 0)?;
    Some((&buf[..nul], &buf[nul + 1..]))
}

/// Appends a message with `tag` whose body is written by `body`.
pub(crate) fn put_message(out: &mut Vec<u8>, tag: u8, body: impl FnOnce(&mut Vec<u8>)) {
    out.push(tag);
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out);
    let len = u32::try_from(out.len() - at).unwrap_or(u32::MAX);
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends a NUL-terminated string (any NUL inside is dropped).
pub(crate) fn put_cstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(s.iter().copied().filter(|&b| b != 0));
    out.push(0);
}

/// Appends `AuthenticationOk` (0), `AuthenticationCleartextPassword` (3), …
pub(crate) fn put_auth_request(out: &mut Vec<u8>, code: u32) {
    put_message(out, b'R', |out| out.extend_from_slice(&code.to_be_bytes()));
}

/// Appends a simple `Query`.
pub(crate) fn put_query(out: &mut Vec<u8>, sql: &str) {
    put_message(out, b'Q', |out| put_cstr(out, sql.as_bytes()));
}

/// Appends `ReadyForQuery`.
#[cfg(test)]
pub(crate) fn put_ready_for_query(out: &mut Vec<u8>, status: u8) {
    put_message(out, b'Z', |out| out.push(status));
}

/// Appends `NegotiateProtocolVersion`: newest supported minor version and the
/// protocol options not recognized.
pub(crate) fn put_negotiate_protocol_version(out: &mut Vec<u8>, minor: u32, unrecognized: &[&str]) {
    put_message(out, b'v', |out| {
        out.extend_from_slice(&minor.to_be_bytes());
        let n = u32::try_from(unrecognized.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        for option in unrecognized {
            put_cstr(out, option.as_bytes());
        }
    });
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

/// An `ErrorResponse` to build: fields S, V, C, M and optionally D and H.
#[derive(Clone, Debug)]
pub(crate) struct ErrorResponse<'a> {
    pub(crate) severity: Severity,
    pub(crate) code: &'a str,
    pub(crate) message: &'a str,
    pub(crate) detail: Option<&'a str>,
    pub(crate) hint: Option<&'a str>,
}

impl<'a> ErrorResponse<'a> {
    /// The catalog entry `error`, without detail or hint.
    pub(crate) fn from_catalog(error: &'a DsqlError) -> Self {
        Self {
            severity: error.severity,
            code: error.code,
            message: error.message,
            detail: None,
            hint: None,
        }
    }

    pub(crate) fn detail(mut self, detail: &'a str) -> Self {
        self.detail = Some(detail);
        self
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_message(out, b'E', |out| {
            let severity = self.severity.as_str().as_bytes();
            for (field, value) in [
                (b'S', Some(severity)),
                (b'V', Some(severity)),
                (b'C', Some(self.code.as_bytes())),
                (b'M', Some(self.message.as_bytes())),
                (b'D', self.detail.map(str::as_bytes)),
                (b'H', self.hint.map(str::as_bytes)),
            ] {
                if let Some(value) = value {
                    out.push(field);
                    put_cstr(out, value);
                }
            }
            out.push(0);
        });
    }

    /// Sends the error on its own and flushes.
    pub(crate) async fn send<W: AsyncWrite + Unpin>(&self, w: &mut W) -> io::Result<()> {
        let mut out = Vec::with_capacity(256);
        self.encode(&mut out);
        w.write_all(&out).await?;
        w.flush().await
    }
}

/// The value of field `field` of an `ErrorResponse` or `NoticeResponse` body.
pub(crate) fn error_field(body: &[u8], field: u8) -> Option<&[u8]> {
    let mut rest = body;
    while let Some((&kind, after)) = rest.split_first() {
        if kind == 0 {
            return None;
        }
        let (value, next) = cstr(after)?;
        if kind == field {
            return Some(value);
        }
        rest = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_round_trips() {
        let mut out = Vec::new();
        let mut error = ErrorResponse::from_catalog(&crate::catalog::ACCESS_DENIED);
        error.hint = Some("Signature expired");
        error.encode(&mut out);
        assert_eq!(out[0], b'E');
        let len = u32::from_be_bytes([out[1], out[2], out[3], out[4]]) as usize;
        assert_eq!(len + 1, out.len());
        let body = &out[5..];
        assert_eq!(error_field(body, b'S'), Some(&b"FATAL"[..]));
        assert_eq!(error_field(body, b'V'), Some(&b"FATAL"[..]));
        assert_eq!(error_field(body, b'C'), Some(&b"08006"[..]));
        assert_eq!(
            error_field(body, b'M'),
            Some(&b"unable to accept connection, access denied"[..])
        );
        assert_eq!(error_field(body, b'H'), Some(&b"Signature expired"[..]));
        assert_eq!(error_field(body, b'D'), None);
    }

    #[test]
    fn frames_split_across_reads() {
        let mut reader = FrameReader::new();
        let mut wire = Vec::new();
        put_query(&mut wire, "SELECT 1");
        put_ready_for_query(&mut wire, b'I');
        reader.buf.extend_from_slice(&wire[..3]);
        assert!(reader.next_frame().expect("valid").is_none());
        reader.buf.extend_from_slice(&wire[3..]);
        let q = reader.next_frame().expect("valid").expect("complete");
        assert_eq!(q.tag, b'Q');
        assert_eq!(cstr(reader.body(&q)).map(|(s, _)| s), Some(&b"SELECT 1"[..]));
        let z = reader.next_frame().expect("valid").expect("complete");
        assert_eq!((z.tag, reader.body(&z)), (b'Z', &b"I"[..]));
        assert!(reader.next_frame().expect("valid").is_none());
        assert!(!reader.has_partial());
    }

    #[test]
    fn bad_lengths_are_errors() {
        let mut reader = FrameReader::new();
        reader.buf.extend_from_slice(&[b'Q', 0, 0, 0, 2]);
        assert!(matches!(reader.next_frame(), Err(ProtocolError::BadLength(2))));
    }

    #[tokio::test]
    async fn startup_packets_parse() {
        let wire = startup_message([("user", "admin"), ("database", "postgres")]);
        let Ok(StartupPacket::Startup(msg)) = read_startup(&mut &wire[..]).await else {
            panic!("not a startup message");
        };
        assert_eq!(msg.version, PROTOCOL_3_0);
        assert_eq!(msg.param("user"), Some("admin"));
        assert_eq!(msg.param("database"), Some("postgres"));

        let mut ssl = 8_u32.to_be_bytes().to_vec();
        ssl.extend_from_slice(&SSL_REQUEST.to_be_bytes());
        assert!(matches!(
            read_startup(&mut &ssl[..]).await,
            Ok(StartupPacket::Ssl)
        ));

        let mut cancel = 16_u32.to_be_bytes().to_vec();
        cancel.extend_from_slice(&CANCEL_REQUEST.to_be_bytes());
        cancel.extend_from_slice(&7_i32.to_be_bytes());
        cancel.extend_from_slice(&(-9_i32).to_be_bytes());
        assert!(matches!(
            read_startup(&mut &cancel[..]).await,
            Ok(StartupPacket::Cancel { pid: 7, secret: -9 })
        ));
    }
}
