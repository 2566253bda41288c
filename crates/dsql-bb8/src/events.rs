//! What the manager tells the pool: closing, the last connect error, and
//! signals for failed and fatal connects.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};

use dsql_tower::lifecycle::Tasks;
use dsql_tower::{Error, ErrorClass};
use tokio::sync::watch;

#[derive(Debug)]
pub(crate) struct Events {
    pub(crate) closed: AtomicBool,
    /// The last connect error, and a signal each time a fatal one happens.
    last_error: Mutex<Option<Error>>,
    pub(crate) fatal: watch::Sender<u64>,
    /// Bumped at every failed connect once bb8 has released its approval
    /// (see [`FailedConnects`]). bb8 approves a connect for a waiting
    /// checkout only when it asks, and a failed connect wakes no one, so a
    /// waiter would sleep until its deadline even once the endpoint is
    /// back. Waiters ask again when this changes.
    pub(crate) failed: watch::Sender<u64>,
    pub(crate) tasks: Arc<Tasks>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            closed: AtomicBool::new(false),
            last_error: Mutex::new(None),
            fatal: watch::Sender::new(0),
            failed: watch::Sender::new(0),
            tasks: Arc::default(),
        }
    }
}

impl Events {
    /// Keeps `error` as the pool's last connect error, signalling waiters
    /// when it is fatal.
    pub(crate) fn connect_failed(&self, error: &Error) {
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
        if error.class() == ErrorClass::Fatal {
            self.fatal.send_modify(|n| *n += 1);
        }
    }

    pub(crate) fn last_error(&self) -> Option<Error> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// bb8's error sink, which tells waiting checkouts to ask again.
///
/// bb8 hands a failed connect's error to its sink only after it has
/// released the connect's approval. A waiter that asked again earlier (as
/// when the manager signalled the failure itself) found the approval still
/// pending, got no connect of its own and slept to its deadline. The sink
/// also receives connections retired at checkout; a waiter asking again
/// then costs nothing.
#[derive(Clone, Debug)]
pub(crate) struct FailedConnects(pub(crate) Arc<Events>);

impl bb8::ErrorSink<Error> for FailedConnects {
    fn sink(&self, _error: Error) {
        self.0.failed.send_modify(|n| *n += 1);
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<Error>> {
        Box::new(self.clone())
    }
}
