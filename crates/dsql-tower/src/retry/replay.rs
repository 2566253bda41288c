use crate::operation::{Effects, Operation};

/// A request that a retry can send again.
///
/// Implemented for [`Operation`] (replayable; idempotent when marked; what
/// its last attempt did is recorded by the execution path) and for
/// `tokio_postgres::Config` (connecting is always safe to repeat).
/// Implement it to put [`RetryPolicy`](super::RetryPolicy) in front of your
/// own requests:
///
/// ```
/// use dsql_tower::retry::Replay;
///
/// #[derive(Clone)]
/// struct Lookup {
///     key: String,
/// }
///
/// impl Replay for Lookup {
///     fn replay(&self) -> Option<Self> {
///         Some(self.clone())
///     }
///
///     fn is_idempotent(&self) -> bool {
///         true // a read
///     }
/// }
///
/// let lookup = Lookup { key: "k".into() };
/// assert!(lookup.replay().is_some() && lookup.is_idempotent());
/// ```
pub trait Replay: Sized {
    /// A copy to send again, or `None` if it cannot be replayed. A copy
    /// shares what is known of the attempts with the original.
    fn replay(&self) -> Option<Self>;

    /// Whether running it twice is harmless, so that it may be replayed
    /// when an attempt may have taken effect.
    fn is_idempotent(&self) -> bool;

    /// What the last attempt did that may have taken effect; a request
    /// that may have taken effect is replayed only if idempotent. The
    /// default knows nothing: [`Effects::None`].
    fn effects(&self) -> Effects {
        Effects::None
    }
}

impl<T> Replay for Operation<T> {
    fn replay(&self) -> Option<Self> {
        Some(self.replayed())
    }

    fn is_idempotent(&self) -> bool {
        Operation::is_idempotent(self)
    }

    fn effects(&self) -> Effects {
        Operation::effects(self)
    }
}

/// Connecting is always safe to repeat.
impl Replay for tokio_postgres::Config {
    fn replay(&self) -> Option<Self> {
        Some(self.clone())
    }

    fn is_idempotent(&self) -> bool {
        true
    }
}
