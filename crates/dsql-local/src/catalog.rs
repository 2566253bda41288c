//! The errors `dsql-local` sends: DSQL's SQLSTATEs and messages, in one table.
//!
//! Each entry says whether it is **confirmed** (seen from real DSQL clusters
//! by pgx, node-postgres or psycopg users, or documented by AWS) or a **best
//! guess**. A wrong guess is a one-line change here; tests compare against
//! these constants rather than against literals.
//!
//! | constant | SQLSTATE | severity | confirmed |
//! |---|---|---|---|
//! | [`ACCESS_DENIED`] | `08006` | FATAL | yes (the HINT says why) |
//! | [`TOO_MANY_CONNECTIONS`] | `53300` | FATAL | yes |
//! | [`RATE_EXCEEDED`] | `53400` | FATAL | yes |
//! | [`CHANGE_CONFLICT`] | `40001` | ERROR | yes (`OC000`) |
//! | [`TLS_REQUIRED`] | `28000` | FATAL | **best guess** |
//! | [`SNI_REQUIRED`] | `08P01` | FATAL | **best guess** |
//! | [`UNKNOWN_ENDPOINT`] | `08006` | FATAL | **best guess** |
//! | [`ALPN_REQUIRED`] | `08P01` | FATAL | **best guess** (PostgreSQL 17's behavior) |
//! | [`TRANSACTION_TIMEOUT`] | `54000` | ERROR | **best guess** |
//! | [`UPSTREAM_UNAVAILABLE`] | `08006` | FATAL | local only |
//! | [`PROTOCOL_VIOLATION`] | `08P01` | FATAL | PostgreSQL's |

/// Severity of an error sent to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The statement or transaction failed; the session goes on.
    Error,
    /// The connection is refused or closed after this message.
    Fatal,
}

impl Severity {
    /// The protocol spelling (`ERROR`, `FATAL`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "ERROR",
            Self::Fatal => "FATAL",
        }
    }
}

/// One error of the catalog: what the client receives in the `ErrorResponse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DsqlError {
    /// The SQLSTATE (field `C`).
    pub code: &'static str,
    /// The primary message (field `M`).
    pub message: &'static str,
    /// The severity (fields `S` and `V`).
    pub severity: Severity,
    /// Whether DSQL is known to send exactly this code and message.
    pub confirmed: bool,
}

// ---------------------------------------------------------------------------
// Confirmed DSQL errors.
// ---------------------------------------------------------------------------

/// Every authentication refusal: bad, expired or misdirected token, unknown
/// key, wrong user ↔ action. The reason is in the HINT, in DSQL's style
/// (`Signature expired: …`, `Wrong user to action mapping. user: admin,
/// action: DbConnect`, `User: … is not authorized to perform: …`).
pub const ACCESS_DENIED: DsqlError = DsqlError {
    code: "08006",
    message: "unable to accept connection, access denied",
    severity: Severity::Fatal,
    confirmed: true,
};

/// The endpoint has its maximum number of open connections.
pub const TOO_MANY_CONNECTIONS: DsqlError = DsqlError {
    code: "53300",
    message: "Unable to accept connection, too many open connections.",
    severity: Severity::Fatal,
    confirmed: true,
};

/// The connection-rate token bucket is empty.
pub const RATE_EXCEEDED: DsqlError = DsqlError {
    code: "53400",
    message: "Unable to accept connection, rate exceeded.",
    severity: Severity::Fatal,
    confirmed: true,
};

/// An optimistic concurrency conflict on data.
pub const CHANGE_CONFLICT: DsqlError = DsqlError {
    code: "40001",
    message: "change conflicts with another transaction, please retry: (OC000)",
    severity: Severity::Error,
    confirmed: true,
};

// ---------------------------------------------------------------------------
// BEST GUESSES: not confirmed against a real DSQL cluster. Change them here.
// ---------------------------------------------------------------------------

/// A plaintext `StartupMessage` (no TLS). Best guess: PostgreSQL's answer
/// for a `hostssl`-only server is `28000`.
pub const TLS_REQUIRED: DsqlError = DsqlError {
    code: "28000",
    message: "unable to accept connection, SSL/TLS is required",
    severity: Severity::Fatal,
    confirmed: false,
};

/// TLS without server name indication: DSQL routes by SNI. Best guess.
pub const SNI_REQUIRED: DsqlError = DsqlError {
    code: "08P01",
    message: "unable to accept connection, no server name indication (SNI) was sent",
    severity: Severity::Fatal,
    confirmed: false,
};

/// SNI names another host than the endpoint. Best guess.
pub const UNKNOWN_ENDPOINT: DsqlError = DsqlError {
    code: "08006",
    message: "unable to accept connection, unknown cluster endpoint",
    severity: Severity::Fatal,
    confirmed: false,
};

/// Direct TLS without ALPN `postgresql`. Best guess, modeled on PostgreSQL 17.
pub const ALPN_REQUIRED: DsqlError = DsqlError {
    code: "08P01",
    message: "direct TLS connection without ALPN protocol \"postgresql\"",
    severity: Severity::Fatal,
    confirmed: false,
};

/// A transaction open longer than the transaction timeout (DSQL: 5 minutes)
/// is rolled back; its next statement and its `COMMIT` get this error.
/// Best guess.
pub const TRANSACTION_TIMEOUT: DsqlError = DsqlError {
    code: "54000",
    message: "transaction age limit exceeded",
    severity: Severity::Error,
    confirmed: false,
};

// ---------------------------------------------------------------------------
// Local conditions (no DSQL equivalent).
// ---------------------------------------------------------------------------

/// The upstream PostgreSQL could not be reached or refused the session in a
/// way that cannot be forwarded as is.
pub const UPSTREAM_UNAVAILABLE: DsqlError = DsqlError {
    code: "08006",
    message: "unable to accept connection, the upstream PostgreSQL is unavailable",
    severity: Severity::Fatal,
    confirmed: false,
};

/// A malformed startup or authentication message (PostgreSQL's own code).
pub const PROTOCOL_VIOLATION: DsqlError = DsqlError {
    code: "08P01",
    message: "invalid startup packet layout",
    severity: Severity::Fatal,
    confirmed: false,
};

/// Every entry of the catalog, confirmed ones first.
pub const ALL: &[DsqlError] = &[
    ACCESS_DENIED,
    TOO_MANY_CONNECTIONS,
    RATE_EXCEEDED,
    CHANGE_CONFLICT,
    TLS_REQUIRED,
    SNI_REQUIRED,
    UNKNOWN_ENDPOINT,
    ALPN_REQUIRED,
    TRANSACTION_TIMEOUT,
    UPSTREAM_UNAVAILABLE,
    PROTOCOL_VIOLATION,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sqlstates() {
        for error in ALL {
            assert_eq!(error.code.len(), 5, "{error:?}");
            assert!(
                error
                    .code
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            );
            assert!(!error.message.contains('\0'));
        }
    }
}
