//! One connection's life: admission (rate and connection limits), the
//! handshake, the upstream session, then the relay until the session ends.

use crate::dialect::Dialect;
use crate::upstream::emulation;
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
use crate::catalog::{self, Severity};
use crate::config::LocalConfig;
use crate::handshake::{self, Outcome};
use crate::limits::ConnectionSlot;
use crate::network::ClientIo;
use crate::protocol::{self, ErrorResponse, error_field};
use crate::relay::{self, SessionEnd};
use crate::stats::{GaugeGuard, RefusalReason, bump};
use crate::upstream::{self, RoleError, UpstreamError, UpstreamSession};

/// Serves one connection; `handshake` is its slot among the handshakes in
/// progress, released once the client is authenticated (or gone).
pub(super) async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    handshake: ConnectionSlot,
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
    serve(tcp, handshake, &ctx, shutdown).instrument(span).await;
}

async fn serve(
    tcp: TcpStream,
    handshake_slot: ConnectionSlot,
    ctx: &ServerCtx,
    mut shutdown: watch::Receiver<bool>,
) {
    let counters = &ctx.stats.counters;
    bump(&counters.accepted);
    let _connection = GaugeGuard::new(&counters.current_connections);
    let _ = tcp.set_nodelay(true);
    let io = match &ctx.network {
        Some(line) => ClientIo::Delayed(line.insert(tcp)),
        None => ClientIo::Tcp(tcp),
    };
    let admission = ctx.admit();
    let refusal = admission.as_ref().err().copied();
    // A connection already refused only needs the time to hear why.
    let handshake_timeout = match refusal {
        Some(_) => ctx
            .config
            .handshake_timeout
            .min(ctx.config.bounds.refused_handshake_timeout),
        None => ctx.config.handshake_timeout,
    };

    let handshake = tokio::select! {
        () = stopped(&mut shutdown) => return,
        result = timeout(handshake_timeout, handshake::handshake(io, ctx, refusal)) => result,
    };
    drop(handshake_slot);
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

    let database = match session_database(&ctx.config, client.startup.param("database")) {
        Ok(database) => database.to_owned(),
        Err(asked) => {
            counters.refused(RefusalReason::UnknownDatabase);
            tracing::info!(database = asked, "connection refused: unknown database");
            let message = format!("database \"{asked}\" does not exist");
            let hint = format!(
                "DSQL has one database, `postgres` (served by the upstream database `{}`): \
                 connect with dbname=postgres.",
                ctx.config.database()
            );
            let error = ErrorResponse {
                severity: Severity::Fatal,
                code: "3D000",
                message: &message,
                detail: None,
                hint: Some(&hint),
            };
            if error.send(&mut client.tls).await.is_ok() {
                let _ = timeout(Duration::from_millis(200), client.tls.shutdown()).await;
            }
            return;
        }
    };
    tracing::Span::current().record("database", database.as_str());
    let open = open_upstream(ctx, &client.user, &database, &client.startup.params);
    let upstream = tokio::select! {
        () = stopped(&mut shutdown) => return,
        result = timeout(ctx.config.upstream_connect_timeout, open) => {
            result.unwrap_or(Err(RoleError::Upstream(UpstreamError::Timeout)))
        }
    };
    let (upstream, role) = match upstream {
        Ok(opened) => opened,
        Err(e) => {
            let reason = if matches!(e, RoleError::Refused { .. }) {
                RefusalReason::PrivilegedRole
            } else {
                RefusalReason::Upstream
            };
            counters.refused(reason);
            tracing::warn!(error = %e, user = client.user, database, "upstream session failed");
            let detail = e.to_string();
            let hint = "dsql-local runs sessions as unprivileged roles: map this DSQL role to \
                        another upstream role (map_role), or remove the role's privileges upstream.";
            let result = match &e {
                RoleError::Upstream(UpstreamError::Refused { error }) => {
                    async {
                        client.tls.write_all(error).await?;
                        client.tls.flush().await
                    }
                    .await
                }
                RoleError::Refused { .. } => {
                    ErrorResponse {
                        severity: Severity::Fatal,
                        code: "28000",
                        message: &detail,
                        detail: None,
                        hint: Some(hint),
                    }
                    .send(&mut client.tls)
                    .await
                }
                _ => {
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
    match ctx.config.dialect {
        Dialect::Dsql => {
            greeting.extend_from_slice(&emulation::surface::rewrite_greeting(&upstream.greeting))
        }
        Dialect::Postgres => greeting.extend_from_slice(&upstream.greeting),
    }
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

/// The upstream database for a client that asks for `asked`: always the
/// configured one. DSQL has one database, `postgres`: a client may name it,
/// the configured database, or none; with an explicit
/// [`upstream_database`](crate::LocalConfigBuilder::upstream_database) any
/// name is accepted. Another name is returned as the error.
fn session_database<'a, 'b>(config: &'a LocalConfig, asked: Option<&'b str>) -> Result<&'a str, &'b str> {
    let database = config.database();
    match asked {
        None | Some("") | Some("postgres") => Ok(database),
        Some(_) if config.upstream_database.is_some() => Ok(database),
        Some(name) if name == database => Ok(database),
        Some(name) => Err(name),
    }
}

/// Opens the upstream session of `client_role` (its own unprivileged role,
/// prepared on first use), falling back to the upstream URL's user when the
/// upstream asks a password for that role. Returns the role logged in as.
async fn open_upstream(
    ctx: &ServerCtx,
    client_role: &str,
    database: &str,
    params: &[(String, String)],
) -> Result<(UpstreamSession, String), RoleError> {
    let role = ctx.roles.resolve(&ctx.config, client_role).await?;
    let target = &ctx.config.upstream;
    let settings = upstream::session_settings(&ctx.config, params);
    match upstream::connect(target, &role.name, role.password, database, params, &settings).await {
        Ok(session) => Ok((session, role.name)),
        Err(UpstreamError::PasswordRequested { role: refused }) => {
            let role = ctx.roles.fall_back(&ctx.config, client_role, &refused).await;
            let session =
                upstream::connect(target, &role.name, role.password, database, params, &settings).await?;
            Ok((session, role.name))
        }
        Err(e) => {
            // The role may have been dropped or changed upstream: prepare it
            // again next time.
            if let UpstreamError::Refused { error } = &e
                && matches!(
                    error.get(5..).and_then(|body| error_field(body, b'C')),
                    Some(b"28000" | b"28P01")
                )
            {
                ctx.roles.forget(client_role).await;
            }
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::session_database;
    use crate::LocalConfig;

    #[test]
    fn the_upstream_database_is_always_the_configured_one() {
        let config = LocalConfig::builder()
            .upstream("postgres://postgres@127.0.0.1:5432/app")
            .build()
            .expect("valid");
        assert_eq!(session_database(&config, None), Ok("app"));
        assert_eq!(session_database(&config, Some("")), Ok("app"));
        assert_eq!(session_database(&config, Some("postgres")), Ok("app"));
        assert_eq!(session_database(&config, Some("app")), Ok("app"));
        assert_eq!(session_database(&config, Some("template1")), Err("template1"));
        let config = LocalConfig::builder()
            .upstream_database("postgres")
            .build()
            .expect("valid");
        assert_eq!(session_database(&config, Some("clusterdb")), Ok("postgres"));
    }
}
