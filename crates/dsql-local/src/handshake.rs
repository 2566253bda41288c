//! The client side of a connection until it is authenticated: TLS (through
//! `SSLRequest` or direct), startup, SNI, admission and the token check.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::catalog::{self, ClientClass, DsqlError, Severity};
use crate::faults::IsolatedConnects;
use crate::network::ClientIo;
use crate::protocol::{self, ErrorResponse, ProtocolError, StartupMessage, StartupPacket};
use crate::server::ServerCtx;
use crate::stats::{RefusalReason, bump};
use crate::tls::ALPN_POSTGRESQL;
use crate::token::Verified;

/// The client connection once TLS is up.
pub(crate) type ClientStream = tokio_rustls::server::TlsStream<ClientIo>;

/// Longest password message accepted (tokens with long session tokens are a
/// few KiB).
const MAX_PASSWORD_LEN: usize = 64 * 1024;
/// How long a refused connection waits for the client to close.
const LINGER: Duration = Duration::from_secs(1);

/// A startup packet without a user (PostgreSQL's own error).
const NO_USER: DsqlError = DsqlError {
    code: "28000",
    message: "no PostgreSQL user name specified in startup packet",
    severity: Severity::Fatal,
    confirmed: false,
    client_classes: &[ClientClass::new(None, catalog::class::REAUTHENTICATE)],
};

/// An authenticated client, ready for its upstream session.
pub(crate) struct Authenticated {
    pub(crate) tls: ClientStream,
    pub(crate) startup: StartupMessage,
    pub(crate) user: String,
    pub(crate) verified: Verified,
}

/// How a handshake ended without an error.
pub(crate) enum Outcome {
    /// The client is authenticated.
    Session(Box<Authenticated>),
    /// The connection was refused (the client was told why) or was a cancel
    /// request.
    Done,
}

/// The handshake failed before the client could be told anything.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("the client closed the connection")]
    Closed,
}

/// Sends `error` (with `hint`) and counts the refusal.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &ServerCtx,
    stream: &mut S,
    reason: RefusalReason,
    error: &DsqlError,
    hint: Option<&str>,
) -> Outcome {
    ctx.stats.counters.refused(reason);
    tracing::info!(reason = %reason, code = error.code, "connection refused");
    let mut response = ErrorResponse::from_catalog(error);
    response.hint = hint;
    if response.send(stream).await.is_ok() && stream.shutdown().await.is_ok() {
        // Wait for the client to close: closing first with unread input
        // would reset the connection, and the client could lose the error.
        let mut sink = [0_u8; 512];
        let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
    Outcome::Done
}

/// Relays a cancel request to the upstream if it names an open session and
/// the connection was admitted: cancel requests go through the same
/// admission (rate, connections, handshakes in progress) as any connection.
async fn relay_cancel(ctx: &ServerCtx, pid: i32, secret: i32, refusal: Option<RefusalReason>) -> Outcome {
    if let Some(reason) = refusal {
        // PostgreSQL never answers a cancel request: just close.
        ctx.stats.counters.refused(reason);
        tracing::debug!(reason = %reason, "cancel request refused at admission");
        return Outcome::Done;
    }
    if let Some(session) = ctx.registry.with_backend_key(pid, secret) {
        // Noted before it is sent: the backend may answer `57014` at once,
        // and the relay must know by then that this one is the client's
        // (in the never-wait mode it rewrites PostgreSQL's spurious
        // "user request" cancels; see `relay::upstream`).
        session.note_cancel();
        match crate::upstream::cancel(&ctx.config.upstream, pid, secret).await {
            Ok(()) => {
                bump(&ctx.stats.counters.cancels_relayed);
                tracing::debug!("cancel request relayed");
            }
            Err(e) => tracing::debug!(error = %e, "cancel request could not be relayed"),
        }
    } else {
        tracing::debug!("cancel request for an unknown session ignored");
    }
    Outcome::Done
}

/// What an isolated region does with an authenticated connection
/// ([`Isolation::connects`](crate::Isolation::connects)): refuse it (the
/// outcome), let it wait until the region heals (or the handshake timeout
/// closes it), or go on (`None`).
async fn isolation_gate(ctx: &ServerCtx, tls: &mut ClientStream) -> Option<Outcome> {
    let mut isolation = ctx.faults.watch_isolation();
    loop {
        let connects = isolation.borrow_and_update().map(|i| i.connects);
        match connects {
            None | Some(IsolatedConnects::Accept) => return None,
            Some(IsolatedConnects::Refuse) => {
                bump(&ctx.stats.counters.connects_refused_by_isolation);
                return Some(
                    refuse(
                        ctx,
                        tls,
                        RefusalReason::RegionIsolated,
                        &catalog::REGION_ISOLATED,
                        None,
                    )
                    .await,
                );
            }
            Some(IsolatedConnects::Hang) => {
                tracing::debug!("region isolated: the connection waits");
                if isolation.changed().await.is_err() {
                    return None;
                }
            }
        }
    }
}

/// Runs the handshake. `refusal` is the admission decision taken at accept
/// time, delivered once the client can read an `ErrorResponse`.
pub(crate) async fn handshake(
    mut tcp: ClientIo,
    ctx: &ServerCtx,
    refusal: Option<RefusalReason>,
) -> Result<Outcome, HandshakeError> {
    let mut first = [0_u8; 1];
    if tcp.peek(&mut first).await? == 0 {
        return Err(HandshakeError::Closed);
    }
    let direct = first[0] == protocol::TLS_HANDSHAKE;
    let max_startup = ctx.config.bounds.max_startup_packet;
    if !direct {
        loop {
            let packet = match protocol::read_startup_bounded(&mut tcp, max_startup).await {
                Ok(packet) => packet,
                Err(ProtocolError::BadLength(len)) if len > max_startup => {
                    tracing::debug!(len, "startup packet too large");
                    return Ok(refuse(
                        ctx,
                        &mut tcp,
                        RefusalReason::ProtocolViolation,
                        &catalog::MESSAGE_TOO_LARGE,
                        None,
                    )
                    .await);
                }
                Err(e) => return Err(e.into()),
            };
            match packet {
                StartupPacket::Ssl => {
                    tcp.write_all(b"S").await?;
                    break;
                }
                StartupPacket::GssEnc => tcp.write_all(b"N").await?,
                StartupPacket::Cancel { pid, secret } => {
                    return Ok(relay_cancel(ctx, pid, secret, refusal).await);
                }
                StartupPacket::Startup(_) => {
                    return Ok(refuse(
                        ctx,
                        &mut tcp,
                        RefusalReason::TlsRequired,
                        &catalog::TLS_REQUIRED,
                        None,
                    )
                    .await);
                }
            }
        }
    }
    let mut tls = ctx.tls.accept(tcp).await?;
    let (sni, alpn) = {
        let (_, conn) = tls.get_ref();
        (
            conn.server_name().map(str::to_owned),
            conn.alpn_protocol() == Some(ALPN_POSTGRESQL),
        )
    };
    tracing::debug!(direct, sni = sni.as_deref(), alpn, "TLS established");
    let startup = match protocol::read_startup_bounded(&mut tls, max_startup).await {
        Ok(StartupPacket::Startup(startup)) => startup,
        Ok(StartupPacket::Cancel { pid, secret }) => {
            return Ok(relay_cancel(ctx, pid, secret, refusal).await);
        }
        Err(ProtocolError::BadLength(len)) if len > max_startup => {
            tracing::debug!(len, "startup packet too large");
            return Ok(refuse(
                ctx,
                &mut tls,
                RefusalReason::ProtocolViolation,
                &catalog::MESSAGE_TOO_LARGE,
                None,
            )
            .await);
        }
        Ok(StartupPacket::Ssl | StartupPacket::GssEnc)
        | Err(ProtocolError::Malformed(_) | ProtocolError::BadLength(_)) => {
            return Ok(refuse(
                ctx,
                &mut tls,
                RefusalReason::ProtocolViolation,
                &catalog::PROTOCOL_VIOLATION,
                None,
            )
            .await);
        }
        Err(e) => return Err(e.into()),
    };
    if direct && !alpn {
        return Ok(refuse(
            ctx,
            &mut tls,
            RefusalReason::AlpnRequired,
            &catalog::ALPN_REQUIRED,
            None,
        )
        .await);
    }
    match sni {
        None => {
            return Ok(refuse(
                ctx,
                &mut tls,
                RefusalReason::SniMissing,
                &catalog::SNI_REQUIRED,
                None,
            )
            .await);
        }
        Some(name) if !name.eq_ignore_ascii_case(ctx.config.endpoint.host()) => {
            return Ok(refuse(
                ctx,
                &mut tls,
                RefusalReason::SniMismatch,
                &catalog::UNKNOWN_ENDPOINT,
                None,
            )
            .await);
        }
        Some(_) => {}
    }
    match refusal {
        Some(reason @ RefusalReason::RateExceeded) => {
            return Ok(refuse(ctx, &mut tls, reason, &catalog::RATE_EXCEEDED, None).await);
        }
        Some(reason) => {
            return Ok(refuse(ctx, &mut tls, reason, &catalog::TOO_MANY_CONNECTIONS, None).await);
        }
        None => {}
    }
    let Some(user) = startup.param("user").map(str::to_owned) else {
        return Ok(refuse(ctx, &mut tls, RefusalReason::ProtocolViolation, &NO_USER, None).await);
    };
    tracing::Span::current().record("user", user.as_str());

    // Ask for the token.
    let mut out = Vec::with_capacity(64);
    let unsupported: Vec<&str> = startup
        .params
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| name.starts_with("_pq_."))
        .collect();
    if startup.version & 0xffff != 0 || !unsupported.is_empty() {
        protocol::put_negotiate_protocol_version(&mut out, 0, &unsupported);
    }
    protocol::put_auth_request(&mut out, 3);
    tls.write_all(&out).await?;
    tls.flush().await?;
    let (tag, body) = match protocol::read_message(&mut tls, MAX_PASSWORD_LEN).await {
        Ok(message) => message,
        Err(ProtocolError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(HandshakeError::Closed);
        }
        Err(ProtocolError::BadLength(len)) if len > MAX_PASSWORD_LEN => {
            return Ok(refuse(
                ctx,
                &mut tls,
                RefusalReason::ProtocolViolation,
                &catalog::MESSAGE_TOO_LARGE,
                None,
            )
            .await);
        }
        Err(ProtocolError::BadLength(_)) => {
            return Ok(refuse(
                ctx,
                &mut tls,
                RefusalReason::ProtocolViolation,
                &catalog::PROTOCOL_VIOLATION,
                None,
            )
            .await);
        }
        Err(e) => return Err(e.into()),
    };
    if tag != b'p' {
        // `Terminate` (a client without a password) or garbage.
        return Err(HandshakeError::Closed);
    }
    let token = match protocol::cstr(&body).map(|(token, _)| std::str::from_utf8(token)) {
        Some(Ok(token)) => token,
        _ => {
            return Ok(refuse(
                ctx,
                &mut tls,
                RefusalReason::MalformedToken,
                &catalog::ACCESS_DENIED,
                Some("The password is not a DSQL authentication token."),
            )
            .await);
        }
    };
    let verified = match ctx.verifier.verify(token, &user) {
        Ok(verified) => verified,
        Err(failure) => {
            if failure.for_other_host {
                bump(&ctx.stats.counters.tokens_for_other_host);
            }
            return Ok(refuse(
                ctx,
                &mut tls,
                failure.reason,
                &catalog::ACCESS_DENIED,
                Some(&failure.hint),
            )
            .await);
        }
    };
    if let Some(refused) = isolation_gate(ctx, &mut tls).await {
        return Ok(refused);
    }
    // The time window first, so that it does not use up the count.
    let refused = ctx.faults.refusing_auth() || {
        let by_count = ctx.faults.take_auth_refusal();
        if by_count {
            bump(&ctx.stats.counters.auths_refused_by_count);
        }
        by_count
    };
    if refused {
        let hint = ctx
            .verifier
            .not_authorized_hint(&verified.access_key_id, verified.action);
        return Ok(refuse(
            ctx,
            &mut tls,
            RefusalReason::FaultInjected,
            &catalog::ACCESS_DENIED,
            Some(&hint),
        )
        .await);
    }
    tracing::debug!(access_key_id = %verified.access_key_id, action = %verified.action, "token accepted");
    Ok(Outcome::Session(Box::new(Authenticated {
        tls,
        startup,
        user,
        verified,
    })))
}
