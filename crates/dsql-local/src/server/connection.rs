//! One connection's life: admission (rate and connection limits), the
//! handshake, the upstream session, then the relay until the session ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;
use tracing::Instrument;

use super::{ServerCtx, stopped};
use crate::catalog;
use crate::handshake::{self, Outcome};
use crate::protocol::{self, ErrorResponse};
use crate::relay::{self, SessionEnd};
use crate::stats::{GaugeGuard, RefusalReason, bump};
use crate::upstream::{self, UpstreamError};

pub(super) async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    ctx: Arc<ServerCtx>,
    shutdown: watch::Receiver<bool>,
) {
    let id = ctx.next_connection.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!(
        "connection",
        id,
        %peer,
        user = tracing::field::Empty,
        database = tracing::field::Empty,
    );
    serve(tcp, &ctx, shutdown).instrument(span).await;
}

async fn serve(tcp: TcpStream, ctx: &ServerCtx, mut shutdown: watch::Receiver<bool>) {
    let counters = &ctx.stats.counters;
    bump(&counters.accepted);
    let _connection = GaugeGuard::new(&counters.current_connections);
    let _ = tcp.set_nodelay(true);
    let admission = ctx.admit();
    let refusal = admission.as_ref().err().copied();

    let handshake = tokio::select! {
        () = stopped(&mut shutdown) => return,
        result = timeout(ctx.config.handshake_timeout, handshake::handshake(tcp, ctx, refusal)) => result,
    };
    let mut client = match handshake {
        Ok(Ok(Outcome::Session(client))) => client,
        Ok(Ok(Outcome::Done)) => return,
        Ok(Err(e)) => {
            bump(&counters.handshakes_failed);
            tracing::debug!(error = %e, "handshake failed");
            return;
        }
        Err(_) => {
            bump(&counters.handshakes_failed);
            tracing::debug!("handshake timed out");
            return;
        }
    };

    let role = ctx.config.upstream_role(&client.user).to_owned();
    let database = ctx
        .config
        .upstream_database
        .clone()
        .or_else(|| client.startup.param("database").map(str::to_owned))
        .unwrap_or_else(|| ctx.config.upstream.database.clone());
    tracing::Span::current().record("database", database.as_str());
    let connect = upstream::connect(&ctx.config.upstream, &role, &database, &client.startup.params);
    let upstream = tokio::select! {
        () = stopped(&mut shutdown) => return,
        result = timeout(ctx.config.upstream_connect_timeout, connect) => {
            result.unwrap_or(Err(UpstreamError::Timeout))
        }
    };
    let upstream = match upstream {
        Ok(upstream) => upstream,
        Err(e) => {
            counters.refused(RefusalReason::Upstream);
            tracing::warn!(error = %e, role, database, "upstream session failed");
            let result = match &e {
                UpstreamError::Refused { error } => {
                    async {
                        client.tls.write_all(error).await?;
                        client.tls.flush().await
                    }
                    .await
                }
                _ => {
                    let detail = e.to_string();
                    ErrorResponse::from_catalog(&catalog::UPSTREAM_UNAVAILABLE)
                        .detail(&detail)
                        .send(&mut client.tls)
                        .await
                }
            };
            if result.is_ok() {
                let _ = timeout(Duration::from_millis(200), client.tls.shutdown()).await;
            }
            return;
        }
    };

    let mut greeting = Vec::with_capacity(upstream.greeting.len() + 9);
    protocol::put_auth_request(&mut greeting, 0);
    greeting.extend_from_slice(&upstream.greeting);
    let sent = async {
        client.tls.write_all(&greeting).await?;
        client.tls.flush().await
    };
    if let Err(e) = sent.await {
        tracing::debug!(error = %e, "client gone before the session started");
        return;
    }
    let registration = ctx.registry.register(upstream.backend_key);
    bump(&counters.sessions_opened);
    let _session = GaugeGuard::new(&counters.current_sessions);
    tracing::debug!(
        role,
        access_key_id = %client.verified.access_key_id,
        action = %client.verified.action,
        "session started"
    );
    let client = *client;
    let end = relay::run(client.tls, upstream, ctx, &registration.ctl, &mut shutdown).await;
    match &end {
        SessionEnd::Expired => bump(&counters.sessions_expired),
        SessionEnd::Killed | SessionEnd::DroppedAtCommit | SessionEnd::DroppedAtStatement => {
            bump(&counters.sessions_dropped_by_faults)
        }
        SessionEnd::Failed(reason) => tracing::debug!(reason, "session failed"),
        _ => {}
    }
    tracing::debug!(?end, "session ended");
    drop(admission);
}
