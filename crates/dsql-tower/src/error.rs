//! The classified error of the services in this crate.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use tokio_postgres::error::{DbError, SqlState};

use crate::classify::ErrorClass;
use crate::operation::Effects;

/// A boxed error, as tower uses.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Where in an operation an error happened; it decides whether replaying the
/// operation is safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Getting a connection (connect, token, TLS, authentication).
    Connect,
    /// Running the operation's statements, before any `COMMIT` was sent. In a
    /// transaction nothing is committed yet; outside one (autocommit), each
    /// statement may already have taken effect.
    Execute,
    /// Committing: `COMMIT` was sent, its answer not received.
    Commit,
    /// Not known (an error classified outside a [`Session`](crate::Session)).
    Unknown,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Execute => "operation",
            Self::Commit => "commit",
            Self::Unknown => "request",
        }
    }
}

/// An error with its [`ErrorClass`]: what the caller may do next.
///
/// Like tokio-postgres' error, `Display` shows one level: the phase, the
/// class, the server's SQLSTATE when there is one, the attempts made and,
/// when a retry policy declined to replay the operation, why. The causes
/// (the driver's error, the server's message with its DETAIL and HINT) are
/// its [`source`](StdError::source) chain, which `anyhow`'s `{:#}`, eyre
/// and tracing print. The server error is at hand through
/// [`db_error`](Self::db_error). Clones are cheap and share the source.
///
/// ```
/// use dsql_tower::{Error, ErrorClass, Phase};
///
/// let error = Error::new(
///     ErrorClass::OutcomeUnknown,
///     Phase::Commit,
///     std::io::Error::from(std::io::ErrorKind::ConnectionReset),
/// );
/// assert!(error.is_outcome_unknown());
/// assert!(error.to_string().contains("may or may not have taken effect"));
/// ```
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    class: ErrorClass,
    phase: Phase,
    attempts: u32,
    effects: Effects,
    not_replayed: Option<&'static str>,
    source: Arc<dyn StdError + Send + Sync>,
}

impl Error {
    /// Wraps `source` with its class and phase.
    pub fn new(class: ErrorClass, phase: Phase, source: impl Into<BoxError>) -> Self {
        Self {
            inner: Arc::new(Inner {
                class,
                phase,
                attempts: 1,
                effects: Effects::None,
                not_replayed: None,
                source: Arc::from(source.into()),
            }),
        }
    }

    /// What the caller may do next.
    pub fn class(&self) -> ErrorClass {
        self.inner.class
    }

    /// Where the error happened.
    pub fn phase(&self) -> Phase {
        self.inner.phase
    }

    /// How many attempts were made, retries included (1 without a retry).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// Whether the failed attempt's effects may have landed, as the
    /// execution path observed it.
    pub fn effects(&self) -> Effects {
        self.inner.effects
    }

    /// Why a retry policy declined to replay the operation, if it did
    /// although the class alone would have allowed it.
    pub fn not_replayed(&self) -> Option<&'static str> {
        self.inner.not_replayed
    }

    /// Whether the operation may or may not have taken effect.
    pub fn is_outcome_unknown(&self) -> bool {
        self.inner.class == ErrorClass::OutcomeUnknown
    }

    /// The PostgreSQL server error behind this one, if any.
    pub fn db_error(&self) -> Option<&DbError> {
        self.find::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::as_db_error)
            .or_else(|| self.find::<DbError>())
    }

    /// The SQLSTATE of the server error behind this one, if any.
    pub fn code(&self) -> Option<&SqlState> {
        self.db_error().map(DbError::code)
    }

    /// The first error of type `E` in the source chain (the operation's own
    /// error type, a `tokio_postgres::Error`, an `io::Error`, …).
    pub fn find<E: StdError + 'static>(&self) -> Option<&E> {
        let mut next: Option<&(dyn StdError + 'static)> = Some(&*self.inner.source);
        while let Some(error) = next {
            if let Some(found) = error.downcast_ref::<E>() {
                return Some(found);
            }
            next = error.source();
        }
        None
    }

    /// The whole chain on one line (`… : db error: ERROR: …`), for logs
    /// that print errors with `Display` only.
    pub fn report(&self) -> impl fmt::Display + '_ {
        Report(self)
    }

    pub(crate) fn with_effects(mut self, effects: Effects) -> Self {
        Arc::make_mut(&mut self.inner).effects = effects;
        self
    }

    pub(crate) fn set_attempts(&mut self, attempts: u32) {
        Arc::make_mut(&mut self.inner).attempts = attempts;
    }

    pub(crate) fn set_not_replayed(&mut self, why: &'static str) {
        Arc::make_mut(&mut self.inner).not_replayed = Some(why);
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("class", &self.inner.class)
            .field("phase", &self.inner.phase)
            .field("attempts", &self.inner.attempts)
            .field("effects", &self.inner.effects)
            .field("not_replayed", &self.inner.not_replayed)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        match inner.class {
            ErrorClass::OutcomeUnknown => write!(
                f,
                "outcome unknown: the connection was lost during the {}, so it may or may not have taken \
                 effect",
                inner.phase.as_str()
            )?,
            class => write!(f, "{} failed ({class})", inner.phase.as_str())?,
        }
        if let Some(code) = self.code() {
            write!(f, " [SQLSTATE {}]", code.code())?;
        }
        if inner.attempts > 1 {
            write!(f, " after {} attempts", inner.attempts)?;
        }
        if let Some(why) = inner.not_replayed {
            write!(f, "; not replayed: {why}")?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.inner.source)
    }
}

struct Report<'a>(&'a Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0, display_chain(&*self.0.inner.source))
    }
}

/// An error and its sources on one line (`db error: FATAL: …`).
pub(crate) fn display_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}
