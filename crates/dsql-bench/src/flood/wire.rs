//! The flood's side of the wire: PostgreSQL sessions opened by hand
//! (`SSLRequest`, TLS verified against dsql-local's CA, startup, the token as
//! password), so that the flood can send what no client library would, and
//! how the server ended each connection.
//!
//! The TLS stream is tokio-postgres-rustls' (already a dependency of the
//! clients compared), driven through tokio-postgres' `MakeTlsConnect`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::BoxError;

/// A TLS session with dsql-local.
pub(super) type Tls = <MakeRustlsConnect as MakeTlsConnect<TcpStream>>::Stream;

/// `SSLRequest` code.
const SSL_REQUEST: u32 = 80_877_103;
/// Longest message the flood reads from the server: its answers (greetings,
/// errors, `SELECT 1`) are small, and a garbled length must not make the
/// flood itself allocate.
const MAX_ANSWER: usize = 1 << 20;
/// How long opening a session may take (TLS, upstream connection).
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the flood needs to reach dsql-local.
pub(super) struct Target {
    pub(super) addr: SocketAddr,
    pub(super) host: String,
    pub(super) tls: Arc<rustls::ClientConfig>,
    /// A token for `admin`, valid for the whole flood.
    pub(super) token: String,
}

/// How the server ended (or kept) one connection of the flood.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Ending {
    /// It sent an `ErrorResponse` (severity, SQLSTATE), then closed.
    Refused(String, String),
    /// It closed (or reset) the connection without a word.
    Closed,
    /// The connection was still open when the flood stopped waiting.
    Held,
    /// The session could not be opened: how.
    NotOpened(String),
    /// Its query was answered, and the session kept open.
    Answered,
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(severity, code) => write!(f, "{severity} {code}"),
            Self::Closed => f.write_str("closed without an error"),
            Self::Held => f.write_str("held"),
            Self::NotOpened(why) => write!(f, "not opened: {why}"),
            Self::Answered => f.write_str("answered, then held open"),
        }
    }
}

impl Target {
    /// A TCP connection, nothing sent.
    pub(super) async fn tcp(&self) -> std::io::Result<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }

    /// `SSLRequest` on `tcp`, answered `S`; `Ok(false)` if the server closed
    /// instead.
    pub(super) async fn ssl_request(tcp: &mut TcpStream) -> std::io::Result<bool> {
        let mut packet = 8_u32.to_be_bytes().to_vec();
        packet.extend_from_slice(&SSL_REQUEST.to_be_bytes());
        tcp.write_all(&packet).await?;
        let mut answer = [0_u8; 1];
        Ok(tcp.read(&mut answer).await? == 1 && answer[0] == b'S')
    }

    /// The `ClientHello` a client would send to this target: the flood sends
    /// it and then nothing more, leaving the server mid-handshake.
    pub(super) fn client_hello(&self) -> Result<Vec<u8>, BoxError> {
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())?;
        let mut connection = rustls::ClientConnection::new(Arc::clone(&self.tls), name)?;
        let mut hello = Vec::new();
        while connection.wants_write() {
            connection.write_tls(&mut hello)?;
        }
        Ok(hello)
    }

    /// An authenticated session as `admin`, up to its first `ReadyForQuery`.
    pub(super) async fn session(&self) -> Result<Tls, Ending> {
        match timeout(OPEN_TIMEOUT, self.open()).await {
            Ok(Ok(Ok(tls))) => Ok(tls),
            Ok(Ok(Err(ending))) => Err(ending),
            Ok(Err(error)) => Err(Ending::NotOpened(error.to_string())),
            Err(_) => Err(Ending::NotOpened("timed out".to_owned())),
        }
    }

    async fn open(&self) -> Result<Result<Tls, Ending>, BoxError> {
        let mut tcp = self.tcp().await?;
        if !Self::ssl_request(&mut tcp).await? {
            return Ok(Err(Ending::NotOpened("no TLS".to_owned())));
        }
        let mut make = MakeRustlsConnect::new(rustls::ClientConfig::clone(&self.tls));
        let connect =
            <MakeRustlsConnect as MakeTlsConnect<TcpStream>>::make_tls_connect(&mut make, &self.host)?;
        let mut tls = connect.connect(tcp).await?;
        let mut body = (3_u32 << 16).to_be_bytes().to_vec();
        for field in [
            "user",
            "admin",
            "database",
            "postgres",
            "application_name",
            "dsql-bench-flood",
            "",
        ] {
            body.extend_from_slice(field.as_bytes());
            body.push(0);
        }
        let mut startup = u32::try_from(body.len() + 4)?.to_be_bytes().to_vec();
        startup.extend_from_slice(&body);
        tls.write_all(&startup).await?;
        tls.flush().await?;
        let mut password = self.token.as_bytes().to_vec();
        password.push(0);
        let mut sent_password = false;
        loop {
            let (tag, body) = read_message(&mut tls).await?;
            match tag {
                b'E' => return Ok(Err(refusal(&body))),
                b'R' if !sent_password => {
                    tls.write_all(&message(b'p', &password)).await?;
                    tls.flush().await?;
                    sent_password = true;
                }
                b'Z' => return Ok(Ok(tls)),
                _ => {}
            }
        }
    }
}

/// A tagged message.
pub(super) fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Reads one message from the server.
pub(super) async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> Result<(u8, Vec<u8>), BoxError> {
    let tag = r.read_u8().await?;
    let len = r.read_u32().await? as usize;
    if !(4..=MAX_ANSWER).contains(&len) {
        return Err(format!("a server message of {len} bytes").into());
    }
    let mut body = vec![0; len - 4];
    r.read_exact(&mut body).await?;
    Ok((tag, body))
}

/// `SELECT 1` on an open session, up to its `ReadyForQuery`.
pub(super) async fn select_one(tls: &mut Tls) -> Result<(), BoxError> {
    tls.write_all(&message(b'Q', b"SELECT 1\0")).await?;
    tls.flush().await?;
    loop {
        match read_message(tls).await? {
            (b'E', body) => return Err(format!("SELECT 1 failed: {}", refusal(&body)).into()),
            (b'Z', _) => return Ok(()),
            _ => {}
        }
    }
}

/// Sends one whole message (`frame`, a `Query`) and reads the answer up to
/// its `ReadyForQuery`, discarding bodies as they arrive (a large result
/// costs the flood nothing). An error in the answer is the ending.
pub(super) async fn query(tls: &mut Tls, frame: &[u8]) -> Result<(), Ending> {
    let answer = async {
        tls.write_all(frame).await?;
        tls.flush().await?;
        let mut error = None;
        loop {
            let tag = tls.read_u8().await?;
            let len = (tls.read_u32().await? as usize)
                .checked_sub(4)
                .ok_or("a message length under 4")?;
            if tag == b'E' && len <= MAX_ANSWER {
                let mut body = vec![0; len];
                tls.read_exact(&mut body).await?;
                let ending = refusal(&body);
                if matches!(&ending, Ending::Refused(severity, _) if severity == "FATAL") {
                    return Ok(Some(ending));
                }
                error = Some(ending);
            } else {
                let mut body = (&mut *tls).take(len as u64);
                tokio::io::copy(&mut body, &mut tokio::io::sink()).await?;
            }
            if tag == b'Z' {
                return Ok::<_, BoxError>(error);
            }
        }
    };
    match answer.await {
        Ok(None) => Ok(()),
        Ok(Some(ending)) => Err(ending),
        Err(_) => Err(Ending::Closed),
    }
}

/// Ends a session politely (`Terminate`).
pub(super) async fn terminate(mut tls: Tls) {
    let _ = tls.write_all(&message(b'X', &[])).await;
    let _ = tls.shutdown().await;
}

/// The severity and SQLSTATE of an `ErrorResponse` body.
fn refusal(body: &[u8]) -> Ending {
    let severity = field(body, b'V').or_else(|| field(body, b'S'));
    let code = field(body, b'C');
    Ending::Refused(
        severity.unwrap_or_else(|| "?".to_owned()),
        code.unwrap_or_else(|| "?".to_owned()),
    )
}

fn field(body: &[u8], kind: u8) -> Option<String> {
    let mut fields = body;
    while let Some((&k, rest)) = fields.split_first() {
        let end = rest.iter().position(|&b| b == 0)?;
        if k == kind {
            return Some(String::from_utf8_lossy(&rest[..end]).into_owned());
        }
        fields = &rest[end + 1..];
    }
    None
}

/// How the server ends `r` within `within`: everything it sends is read
/// (an `ErrorResponse`, usually) until it closes.
pub(super) async fn ending<R: AsyncRead + Unpin>(r: &mut R, within: Duration) -> Ending {
    match timeout(within, read_until_closed(r)).await {
        Ok(got) => parse_ending(&got),
        Err(_) => Ending::Held,
    }
}

/// Everything the server sends until it closes (bounded: an error is a few
/// hundred bytes, and the flood keeps no more than [`MAX_ANSWER`]).
async fn read_until_closed<R: AsyncRead + Unpin>(r: &mut R) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) if got.len() < MAX_ANSWER => got.extend_from_slice(&buf[..n]),
            Ok(_) => {}
        }
    }
}

/// The first `ErrorResponse` in what the server sent before closing.
fn parse_ending(mut rest: &[u8]) -> Ending {
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let Some(body) = rest.get(5..1 + len).filter(|_| len >= 4) else {
            break;
        };
        if rest[0] == b'E' {
            return refusal(body);
        }
        rest = &rest[1 + len..];
    }
    Ending::Closed
}

/// Writes `bytes` in chunks of `chunk` while reading what the server
/// answers, and returns how the server ended the connection: within
/// `settle` of the last byte written (or of a failed write), or
/// [`Ending::Held`] with the connection still open (returned then, to be
/// held on to).
pub(super) async fn send_and_watch<S>(
    stream: S,
    bytes: &[u8],
    chunk: usize,
    settle: Duration,
) -> (Ending, Option<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let ending = {
        let write = async {
            for piece in bytes.chunks(chunk.max(1)) {
                if writer.write_all(piece).await.is_err() {
                    return;
                }
            }
            let _ = writer.flush().await;
        };
        let watch = read_until_closed(&mut reader);
        tokio::pin!(watch);
        // The server may end the session before the bytes are all written.
        let closed = tokio::select! {
            got = &mut watch => Some(got),
            () = write => None,
        };
        match closed {
            Some(got) => parse_ending(&got),
            None => match timeout(settle, &mut watch).await {
                Ok(got) => parse_ending(&got),
                Err(_) => Ending::Held,
            },
        }
    };
    if ending == Ending::Held {
        (ending, Some(reader.unsplit(writer)))
    } else {
        (ending, None)
    }
}

/// Whether `tcp` is still open: nothing read within `within` but bytes
/// (the TLS server flight of a stalled handshake), and no end of stream.
pub(super) async fn still_open(tcp: &mut TcpStream, within: Duration) -> bool {
    let read = async {
        let mut buf = [0_u8; 4096];
        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    timeout(within, read).await.is_err()
}
