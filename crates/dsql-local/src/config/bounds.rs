//! [`Bounds`]: limits on the memory and sockets a client can make
//! `dsql-local` hold before (and while) it is authenticated.

use std::time::Duration;

use crate::error::ConfigError;

/// PostgreSQL's own limit on startup packets (`MAX_STARTUP_PACKET_LENGTH`).
pub const DEFAULT_MAX_STARTUP_PACKET: usize = 10_000;
/// Largest client message the relay accepts: 64 MiB.
///
/// **A deliberate difference from PostgreSQL**, which accepts `Query`,
/// `Parse`, `Bind` and `CopyData` messages of up to 1 GiB − 1: a local test
/// endpoint has no use for such messages, and each relayed message is held
/// whole in memory. Raise it with [`Bounds::max_message_size`] if a test
/// needs larger ones.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;
/// Largest message size that can be configured: PostgreSQL's 1 GiB − 1.
pub const MAX_MESSAGE_SIZE_LIMIT: usize = (1 << 30) - 1;
/// Bytes that the message buffers of all sessions may hold together: 512
/// MiB. Each buffer holds its first 64 KiB free of charge.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 512 << 20;
/// Connections whose handshake (TLS, startup, authentication, or a cancel
/// request) may be in progress at once.
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 256;
/// Time a connection already refused at admission (rate or connection
/// limit) gets to receive its error.
pub const DEFAULT_REFUSED_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Bounds on what a client can make `dsql-local` hold: message sizes and
/// connections in their handshake. Every field has a documented default
/// ([`Bounds::default`]); set them with
/// [`LocalConfigBuilder::bounds`](crate::LocalConfigBuilder::bounds).
///
/// Buffers only grow as bytes actually arrive: a message header declaring a
/// large length reserves nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Bounds {
    /// Largest startup packet (`StartupMessage`, `SSLRequest`,
    /// `CancelRequest`), length word included. Default
    /// [`DEFAULT_MAX_STARTUP_PACKET`] (10,000 bytes, PostgreSQL's); at least
    /// 8 and at most 65,536.
    pub max_startup_packet: usize,
    /// Largest message a client may send in a session, tag excluded (the
    /// wire length). Default [`DEFAULT_MAX_MESSAGE_SIZE`] (64 MiB, a
    /// deliberate difference from PostgreSQL's 1 GiB − 1); a larger one
    /// ends the session before its body is read. At least 1 MiB, at most
    /// [`MAX_MESSAGE_SIZE_LIMIT`].
    pub max_message_size: usize,
    /// Bytes that the message buffers of all sessions (client and upstream
    /// sides) may hold together beyond their first 64 KiB each. Default
    /// [`DEFAULT_MAX_BUFFERED_BYTES`] (512 MiB); a session whose buffer
    /// cannot grow ends with `53200 out of memory`
    /// ([`OUT_OF_MEMORY`](crate::catalog::OUT_OF_MEMORY)). At least
    /// [`max_message_size`](Self::max_message_size).
    pub max_buffered_bytes: usize,
    /// Connections in their handshake at once (TLS, startup and
    /// authentication, cancel requests included). Default
    /// [`DEFAULT_MAX_PENDING_HANDSHAKES`] (256); a connection beyond it is
    /// closed at once, before any TLS handshake. At least 1.
    pub max_pending_handshakes: usize,
    /// Time a connection refused at admission (connection rate or maximum
    /// connections) gets to negotiate TLS and receive its error, instead of
    /// the full [handshake timeout](crate::LocalConfigBuilder::handshake_timeout).
    /// Default [`DEFAULT_REFUSED_HANDSHAKE_TIMEOUT`] (5 s); longer than zero.
    pub refused_handshake_timeout: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max_startup_packet: DEFAULT_MAX_STARTUP_PACKET,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
            refused_handshake_timeout: DEFAULT_REFUSED_HANDSHAKE_TIMEOUT,
        }
    }
}

impl Bounds {
    /// Sets [`max_startup_packet`](Self::max_startup_packet).
    pub fn max_startup_packet(mut self, bytes: usize) -> Self {
        self.max_startup_packet = bytes;
        self
    }

    /// Sets [`max_message_size`](Self::max_message_size).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`max_buffered_bytes`](Self::max_buffered_bytes).
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.max_buffered_bytes = bytes;
        self
    }

    /// Sets [`max_pending_handshakes`](Self::max_pending_handshakes).
    pub fn max_pending_handshakes(mut self, connections: usize) -> Self {
        self.max_pending_handshakes = connections;
        self
    }

    /// Sets [`refused_handshake_timeout`](Self::refused_handshake_timeout).
    pub fn refused_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.refused_handshake_timeout = timeout;
        self
    }

    /// Checks every bound ([`ConfigError::Invalid`] names the first wrong one).
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(8..=65_536).contains(&self.max_startup_packet) {
            return Err(ConfigError::invalid(
                "bounds.max_startup_packet",
                "must be between 8 and 65,536 bytes",
            ));
        }
        if !(1 << 20..=MAX_MESSAGE_SIZE_LIMIT).contains(&self.max_message_size) {
            return Err(ConfigError::invalid(
                "bounds.max_message_size",
                "must be between 1 MiB and 1 GiB - 1",
            ));
        }
        if self.max_buffered_bytes < self.max_message_size {
            return Err(ConfigError::invalid(
                "bounds.max_buffered_bytes",
                "must be at least bounds.max_message_size",
            ));
        }
        if self.max_pending_handshakes == 0 {
            return Err(ConfigError::invalid(
                "bounds.max_pending_handshakes",
                "must be at least 1",
            ));
        }
        if self.refused_handshake_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "bounds.refused_handshake_timeout",
                "must be longer than zero",
            ));
        }
        Ok(())
    }
}
