//! Error classification: what an error means for the caller's next step.
//!
//! [`Classify`] maps any error to an [`ErrorClass`]; [`DsqlClassifier`] knows
//! DSQL's errors (its table is [`DSQL_RULES`], in one place) and the I/O
//! failures of a lost connection. Wrap or replace it to change a decision.
//!
//! A classifier is set once, as a [`SharedClassifier`], with a method named
//! `classifier` on every builder (session, pool, connect stack, retry policy,
//! layers). A failure is classified where it happens (the connection
//! lifecycle, the connect stack) and the class travels on the
//! [`Error`](crate::Error): layers above trust it. [`ClassifyLayer`]
//! classifies the errors of services that do not classify their own.
//!
//! A classifier decides *what an error means*; it cannot make a replay
//! unsafe or safe: whether an operation's effects may have landed is
//! observed by the execution path and enforced by the retry policy.

mod layer;
mod rules;
mod shared;

use std::error::Error as StdError;
use std::fmt;
use std::io;

use tokio_postgres::error::DbError;

pub(crate) use self::layer::classify;
pub use self::layer::{ClassifyFuture, ClassifyLayer, ClassifyService};
pub use self::rules::{DSQL_RULES, Rule, classify_server_error};
pub use self::shared::SharedClassifier;

/// What an error means for whoever decides to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// An optimistic concurrency conflict (`40001`, `OC000`/`OC001`): nothing
    /// was committed; replay the whole transaction.
    Conflict,
    /// The connection is gone or unusable (closed by the server, reset,
    /// failover): reconnect. Nothing was committed by the failed attempt.
    Reconnect,
    /// The server refused the token (expired, or IAM denied): get a new token
    /// and reconnect, a few times at most.
    Reauthenticate,
    /// The cluster asks clients to slow down (`53300`, `53400`, `57P03`):
    /// back off, then reconnect.
    Throttled,
    /// The connection was lost while a statement or `COMMIT` that may have
    /// taken effect was in flight: replay only an idempotent operation.
    OutcomeUnknown,
    /// Retrying cannot help (syntax, constraints, limits, configuration).
    Fatal,
}

impl ErrorClass {
    /// Whether the connection that produced this error must be discarded.
    pub fn discards_connection(self) -> bool {
        matches!(
            self,
            Self::Reconnect | Self::Reauthenticate | Self::Throttled | Self::OutcomeUnknown
        )
    }

    /// A short description, for messages and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conflict => "conflict",
            Self::Reconnect => "reconnect",
            Self::Reauthenticate => "reauthenticate",
            Self::Throttled => "throttled",
            Self::OutcomeUnknown => "outcome unknown",
            Self::Fatal => "fatal",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decides the [`ErrorClass`] of an error.
///
/// Implemented for closures, so a rule can be added in front of the default:
///
/// ```
/// use std::error::Error;
/// use dsql_tower::classify::{Classify, DsqlClassifier, ErrorClass};
///
/// #[derive(Debug)]
/// struct LeaseLost;
/// impl std::fmt::Display for LeaseLost {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("lease lost")
///     }
/// }
/// impl Error for LeaseLost {}
///
/// let classifier = |error: &(dyn Error + 'static)| {
///     if error.is::<LeaseLost>() {
///         ErrorClass::Conflict
///     } else {
///         DsqlClassifier.classify(error)
///     }
/// };
/// assert_eq!(classifier.classify(&LeaseLost), ErrorClass::Conflict);
/// ```
pub trait Classify: Send + Sync {
    /// The class of `error`; errors are given with their source chain.
    fn classify(&self, error: &(dyn StdError + 'static)) -> ErrorClass;
}

impl<F> Classify for F
where
    F: Fn(&(dyn StdError + 'static)) -> ErrorClass + Send + Sync,
{
    fn classify(&self, error: &(dyn StdError + 'static)) -> ErrorClass {
        self(error)
    }
}

impl<C: Classify + ?Sized> Classify for std::sync::Arc<C> {
    fn classify(&self, error: &(dyn StdError + 'static)) -> ErrorClass {
        (**self).classify(error)
    }
}

/// DSQL's error table ([`DSQL_RULES`]) plus lost connections, token errors
/// and TLS failures.
///
/// It walks the error's source chain and decides on the first error it
/// recognizes: an already classified [`crate::Error`], a PostgreSQL error
/// (by SQLSTATE, message and hint), a closed connection, an I/O error (by
/// kind), a TLS failure, a token error, a timeout. Anything else is
/// [`ErrorClass::Fatal`]: unknown errors are not retried.
///
/// ```
/// use dsql_tower::classify::{Classify, DsqlClassifier, ErrorClass};
///
/// let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
/// assert_eq!(DsqlClassifier.classify(&reset), ErrorClass::Reconnect);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct DsqlClassifier;

impl Classify for DsqlClassifier {
    fn classify(&self, error: &(dyn StdError + 'static)) -> ErrorClass {
        let mut next = Some(error);
        while let Some(error) = next {
            if let Some(class) = classify_one(error) {
                return class;
            }
            next = error.source();
        }
        ErrorClass::Fatal
    }
}

fn classify_one(error: &(dyn StdError + 'static)) -> Option<ErrorClass> {
    if let Some(error) = error.downcast_ref::<crate::Error>() {
        return Some(error.class());
    }
    if let Some(error) = error.downcast_ref::<tokio_postgres::Error>() {
        if let Some(db) = error.as_db_error() {
            return Some(classify_db_error(db));
        }
        if error.is_closed() {
            return Some(ErrorClass::Reconnect);
        }
        // Otherwise look at the source (I/O, TLS) on the next iteration.
        return None;
    }
    if let Some(db) = error.downcast_ref::<DbError>() {
        return Some(classify_db_error(db));
    }
    if let Some(error) = error.downcast_ref::<io::Error>() {
        return Some(classify_io(error));
    }
    if error.is::<rustls::Error>() {
        // Certificate and protocol failures do not heal by retrying.
        return Some(ErrorClass::Fatal);
    }
    if let Some(error) = error.downcast_ref::<dsql_auth::TokenError>() {
        return Some(classify_token_error(error));
    }
    if error.is::<tokio::time::error::Elapsed>() || error.is::<tower::timeout::error::Elapsed>() {
        return Some(ErrorClass::OutcomeUnknown);
    }
    None
}

/// Classifies a server error with [`DSQL_RULES`].
pub fn classify_db_error(error: &DbError) -> ErrorClass {
    classify_server_error(error.code().code(), error.message(), error.hint())
}

fn classify_io(error: &io::Error) -> ErrorClass {
    use io::ErrorKind::*;
    if let Some(inner) = error.get_ref()
        && inner.is::<rustls::Error>()
    {
        return ErrorClass::Fatal;
    }
    match error.kind() {
        InvalidInput | InvalidData | PermissionDenied | Unsupported => ErrorClass::Fatal,
        // Refused, reset, aborted, broken pipe, unexpected EOF, timed out,
        // unreachable, DNS failures: the network or the server went away.
        _ => ErrorClass::Reconnect,
    }
}

fn classify_token_error(error: &dsql_auth::TokenError) -> ErrorClass {
    use dsql_auth::TokenError;
    match error {
        // Credential sources (IMDS, STS, SSO) fail transiently; a refresh may
        // bring new credentials.
        TokenError::Credentials { .. }
        | TokenError::CredentialsExpired { .. }
        | TokenError::Provider { .. } => ErrorClass::Reauthenticate,
        _ => ErrorClass::Fatal,
    }
}

#[cfg(test)]
mod tests;
