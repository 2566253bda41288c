//! The upstream PostgreSQL behind `dsql-local`.
//!
//! - [`target`]: its URL ([`UpstreamTarget`]);
//! - [`stream`]: the connection to it, loopback TCP or a Unix-domain socket;
//! - [`connect`](mod@connect): opening an authenticated session (trust,
//!   SCRAM-SHA-256, md5 or cleartext password, with `postgres-protocol`),
//!   with the client's harmless startup parameters only;
//! - [`require_auth`]: the methods the upstream may authenticate with;
//! - [`emulation`]: what PostgreSQL runs to answer like DSQL (the row cap,
//!   asynchronous DDL's jobs);
//! - [`roles`]: the unprivileged upstream role each DSQL role's sessions
//!   run as, created by `dsql-local` on first use;
//! - this module: the session it gives, its errors, and relaying cancel
//!   requests.

mod connect;
pub(crate) mod emulation;
mod require_auth;
mod roles;
mod stream;
mod target;

use std::io;

use tokio::io::AsyncWriteExt;

pub(crate) use self::connect::{Password, connect};
pub(crate) use self::emulation::session_settings;
pub(crate) use self::roles::{RoleError, Roles};
pub(crate) use self::stream::{UpstreamStream, into_split};
pub(crate) use self::target::UpstreamTarget;
use crate::protocol::{self, FrameReader, ProtocolError};

/// The isolation level of every upstream session: DSQL runs transactions at
/// repeatable read (snapshot isolation).
pub(crate) const ISOLATION: &str = "repeatable read";

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
    #[error(
        "the upstream PostgreSQL asks for {asked} authentication, which the upstream URL does \
         not allow (require_auth={allowed}; cleartext needs require_auth=password)"
    )]
    MethodNotAllowed {
        /// The method the upstream asked for.
        asked: &'static str,
        /// The methods allowed, in libpq's syntax.
        allowed: String,
    },
    #[error("the upstream PostgreSQL asks for a password but the upstream URL has none")]
    PasswordRequired,
    #[error(
        "the upstream PostgreSQL asks for a password for role `{role}`, and dsql-local has only \
         the upstream URL user's"
    )]
    PasswordRequested {
        /// The role logged in as.
        role: String,
    },
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
    pub(crate) stream: UpstreamStream,
    /// Holds any bytes read past the greeting.
    pub(crate) reader: FrameReader,
    /// `ParameterStatus`, `BackendKeyData`, notices and the final
    /// `ReadyForQuery`, to forward to the client.
    pub(crate) greeting: Vec<u8>,
    /// The upstream backend's cancel key (process id, secret).
    pub(crate) backend_key: Option<(i32, i32)>,
}

/// Relays a cancel request to the upstream.
pub(crate) async fn cancel(target: &UpstreamTarget, pid: i32, secret: i32) -> io::Result<()> {
    let mut stream = stream::connect(target.addr()).await?;
    let mut packet = Vec::with_capacity(16);
    packet.extend_from_slice(&16_u32.to_be_bytes());
    packet.extend_from_slice(&protocol::CANCEL_REQUEST.to_be_bytes());
    packet.extend_from_slice(&pid.to_be_bytes());
    packet.extend_from_slice(&secret.to_be_bytes());
    stream.write_all(&packet).await?;
    stream.shutdown().await
}
