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
//! | [`REGION_ISOLATED`] | `08006` | FATAL | **best guess** (multi-region) |
//! | [`REGION_ISOLATED_COMMIT`] | `08006` | ERROR | **best guess** (multi-region) |
//! | [`UPSTREAM_UNAVAILABLE`] | `08006` | FATAL | local only |
//! | [`PROTOCOL_VIOLATION`] | `08P01` | FATAL | PostgreSQL's |
//! | [`MESSAGE_TOO_LARGE`] | `54000` | FATAL | local only, **best guess** |
//! | [`OUT_OF_MEMORY`] | `53200` | FATAL | local only (PostgreSQL's) |
//!
//! Each entry also lists the hints a client may receive with it and, for
//! each, what the client must do ([`ClientClass`]), so that a client-side
//! classifier can be tested against this table.

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

/// The names of the classes a client gives an error, as `dsql-tower`'s
/// `ErrorClass::as_str` spells them.
pub mod class {
    /// Replay the whole transaction.
    pub const CONFLICT: &str = "conflict";
    /// Open a new connection.
    pub const RECONNECT: &str = "reconnect";
    /// Sign a new token, then open a new connection.
    pub const REAUTHENTICATE: &str = "reauthenticate";
    /// Back off, then retry.
    pub const THROTTLED: &str = "throttled";
    /// The connection was lost while a `COMMIT` was in flight.
    pub const OUTCOME_UNKNOWN: &str = "outcome unknown";
    /// Never retry: surface the error.
    pub const FATAL: &str = "fatal";
}

/// One hint an error may come with, and the class a client must give the
/// error with that hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientClass {
    /// The hint (field `H`) as `dsql-local` sends it, its variable parts (dates,
    /// names) filled with example values; `None`: no hint.
    pub hint: Option<&'static str>,
    /// One of the [`class`] names.
    pub class: &'static str,
}

impl ClientClass {
    /// A hint (or none) and its class.
    pub const fn new(hint: Option<&'static str>, class: &'static str) -> Self {
        Self { hint, class }
    }
}

/// The hints of [`ACCESS_DENIED`]: every refusal reason's, as the token
/// verifier writes them. Only the wrong user ↔ action mapping is fatal (a
/// configuration error); every other refusal needs a new token.
const ACCESS_DENIED_CLASSES: &[ClientClass] = &[
    ClientClass::new(
        Some("Wrong user to action mapping. user: admin, action: DbConnect"),
        class::FATAL,
    ),
    ClientClass::new(
        Some("Signature expired: 20240827T000730Z is now earlier than 20240827T000731Z"),
        class::REAUTHENTICATE,
    ),
    ClientClass::new(
        Some(
            "Signature not yet current: 20240827T001000Z is still later than 20240827T000500Z \
             (20240827T000000Z + 5 min.)",
        ),
        class::REAUTHENTICATE,
    ),
    ClientClass::new(
        Some(
            "User: arn:aws:iam::000000000000:user/AKIDLOCAL is not authorized to perform: \
             dsql:DbConnectAdmin on resource: \
             arn:aws:dsql:us-east-1:000000000000:cluster/dsqllocal00000000000000000 because no \
             identity-based policy allows the dsql:DbConnectAdmin action",
        ),
        class::REAUTHENTICATE,
    ),
    ClientClass::new(
        Some("User: arn:aws:iam::000000000000:user/AKIDLOCAL is not authorized to access this resource"),
        class::REAUTHENTICATE,
    ),
    ClientClass::new(
        Some("The security token included in the request is invalid."),
        class::REAUTHENTICATE,
    ),
    ClientClass::new(
        Some(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method.",
        ),
        class::REAUTHENTICATE,
    ),
    ClientClass::new(
        Some("Credential should be scoped to a valid region, not 'eu-west-1'."),
        class::REAUTHENTICATE,
    ),
    ClientClass::new(
        Some("Credential should be scoped to correct service: 'dsql'."),
        class::REAUTHENTICATE,
    ),
    ClientClass::new(
        Some("X-Amz-Expires must be less than a week (in seconds) that is 604800"),
        class::REAUTHENTICATE,
    ),
    ClientClass::new(
        Some("Unsupported signing algorithm: only AWS4-HMAC-SHA256 is supported."),
        class::REAUTHENTICATE,
    ),
    ClientClass::new(
        Some("The token must sign exactly the header 'host'."),
        class::REAUTHENTICATE,
    ),
    ClientClass::new(
        Some("The password is not a DSQL authentication token."),
        class::REAUTHENTICATE,
    ),
    ClientClass::new(None, class::REAUTHENTICATE),
];

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
    /// Every hint the error may come with (`None`: none), and the class a
    /// client must give it.
    pub client_classes: &'static [ClientClass],
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
    client_classes: ACCESS_DENIED_CLASSES,
};

/// The endpoint has its maximum number of open connections.
pub const TOO_MANY_CONNECTIONS: DsqlError = DsqlError {
    code: "53300",
    message: "Unable to accept connection, too many open connections.",
    severity: Severity::Fatal,
    confirmed: true,
    client_classes: &[ClientClass::new(None, class::THROTTLED)],
};

/// The connection-rate token bucket is empty.
pub const RATE_EXCEEDED: DsqlError = DsqlError {
    code: "53400",
    message: "Unable to accept connection, rate exceeded.",
    severity: Severity::Fatal,
    confirmed: true,
    client_classes: &[ClientClass::new(None, class::THROTTLED)],
};

/// An optimistic concurrency conflict on data. The wording is what a
/// cluster answered in September 2026; older reports (pgx and psycopg
/// users') quote `change conflicts with another transaction, please retry:
/// (OC000)`. Clients must classify by SQLSTATE and code, not by the text.
pub const CHANGE_CONFLICT: DsqlError = DsqlError {
    code: "40001",
    message: "change conflicts with another transaction (OC000)",
    severity: Severity::Error,
    confirmed: true,
    client_classes: &[ClientClass::new(None, class::CONFLICT)],
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
    client_classes: &[ClientClass::new(None, class::REAUTHENTICATE)],
};

/// TLS without server name indication: DSQL routes by SNI. Best guess.
pub const SNI_REQUIRED: DsqlError = DsqlError {
    code: "08P01",
    message: "unable to accept connection, no server name indication (SNI) was sent",
    severity: Severity::Fatal,
    confirmed: false,
    client_classes: &[ClientClass::new(None, class::RECONNECT)],
};

/// SNI names another host than the endpoint. Best guess. Clients classify
/// it by its `08` class (reconnect), though no retry can help.
pub const UNKNOWN_ENDPOINT: DsqlError = DsqlError {
    code: "08006",
    message: "unable to accept connection, unknown cluster endpoint",
    severity: Severity::Fatal,
    confirmed: false,
    client_classes: &[ClientClass::new(None, class::RECONNECT)],
};

/// Direct TLS without ALPN `postgresql`. Best guess, modeled on PostgreSQL 17.
pub const ALPN_REQUIRED: DsqlError = DsqlError {
    code: "08P01",
    message: "direct TLS connection without ALPN protocol \"postgresql\"",
    severity: Severity::Fatal,
    confirmed: false,
    client_classes: &[ClientClass::new(None, class::RECONNECT)],
};

/// A transaction open longer than the transaction timeout (DSQL: 5 minutes)
/// is rolled back; its next statement and its `COMMIT` get this error.
/// Best guess.
pub const TRANSACTION_TIMEOUT: DsqlError = DsqlError {
    code: "54000",
    message: "transaction age limit exceeded",
    severity: Severity::Error,
    confirmed: false,
    client_classes: &[ClientClass::new(None, class::FATAL)],
};

// ---------------------------------------------------------------------------
// BEST GUESSES for multi-region clusters. AWS documents that a peer cut off
// from the other peer and the witness cannot commit, not what its clients
// see; `dsql-local`'s assumption is written at `Isolation`
// (`crate::Isolation`). Both are `08006` (connection exception), so that a
// client classifies them "reconnect", which a multi-region client reads as
// "this region cannot serve now: go to another".
// ---------------------------------------------------------------------------

/// A new connection to a region isolated from its peers
/// ([`Faults::isolate`](crate::Faults::isolate)), once its token is
/// verified. Best guess.
pub const REGION_ISOLATED: DsqlError = DsqlError {
    code: "08006",
    message: "unable to accept connection, the region cannot reach its peer regions",
    severity: Severity::Fatal,
    confirmed: false,
    client_classes: &[ClientClass::new(None, class::RECONNECT)],
};

/// A `COMMIT` of a transaction that wrote (rolled back instead), or a write
/// in autocommit (not applied), in a region isolated from its peers. Best
/// guess. Not `40001`: a conflict is replayed at once in the same region,
/// where it would fail again; `08006` says the region cannot serve, and the
/// session stays usable for reads. The `DETAIL` says what became of the
/// transaction.
pub const REGION_ISOLATED_COMMIT: DsqlError = DsqlError {
    code: "08006",
    message: "unable to commit, the region cannot reach its peer regions",
    severity: Severity::Error,
    confirmed: false,
    client_classes: &[ClientClass::new(None, class::RECONNECT)],
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
    client_classes: &[ClientClass::new(None, class::RECONNECT)],
};

/// A malformed startup or authentication message (PostgreSQL's own code).
pub const PROTOCOL_VIOLATION: DsqlError = DsqlError {
    code: "08P01",
    message: "invalid startup packet layout",
    severity: Severity::Fatal,
    confirmed: false,
    client_classes: &[ClientClass::new(None, class::RECONNECT)],
};

/// A client message, or startup packet, longer than `dsql-local`'s bound
/// ([`Bounds`](crate::LocalConfigBuilder::bounds)). Local condition, best
/// guess modeled on PostgreSQL's `program_limit_exceeded`; PostgreSQL itself
/// accepts messages up to 1 GiB − 1 and startup packets up to 10,000 bytes.
pub const MESSAGE_TOO_LARGE: DsqlError = DsqlError {
    code: "54000",
    message: "message too large",
    severity: Severity::Fatal,
    confirmed: false,
    client_classes: &[ClientClass::new(None, class::FATAL)],
};

/// The message buffers of all sessions together reached `dsql-local`'s
/// budget ([`Bounds::max_buffered_bytes`](crate::Bounds::max_buffered_bytes)):
/// the session that needed more ends. Local condition, in PostgreSQL's words
/// for `out_of_memory`.
pub const OUT_OF_MEMORY: DsqlError = DsqlError {
    code: "53200",
    message: "out of memory",
    severity: Severity::Fatal,
    confirmed: false,
    client_classes: &[ClientClass::new(None, class::FATAL)],
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
    REGION_ISOLATED,
    REGION_ISOLATED_COMMIT,
    UPSTREAM_UNAVAILABLE,
    PROTOCOL_VIOLATION,
    MESSAGE_TOO_LARGE,
    OUT_OF_MEMORY,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_says_how_clients_classify_it() {
        let classes = [
            class::CONFLICT,
            class::RECONNECT,
            class::REAUTHENTICATE,
            class::THROTTLED,
            class::OUTCOME_UNKNOWN,
            class::FATAL,
        ];
        for error in ALL {
            assert!(!error.client_classes.is_empty(), "{error:?}");
            for (i, entry) in error.client_classes.iter().enumerate() {
                assert!(classes.contains(&entry.class), "{error:?}");
                assert!(
                    !error.client_classes[..i].iter().any(|e| e.hint == entry.hint),
                    "hint listed twice: {entry:?}"
                );
            }
        }
        let fatal: Vec<_> = ACCESS_DENIED
            .client_classes
            .iter()
            .filter(|c| c.class == class::FATAL)
            .collect();
        assert_eq!(fatal.len(), 1);
        assert!(
            fatal[0]
                .hint
                .is_some_and(|h| h.starts_with("Wrong user to action mapping"))
        );
    }

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
