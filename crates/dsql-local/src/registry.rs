//! Open sessions, so that faults can close them and cancel requests can find
//! their backend.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// Control of one open session: a kill switch, and what the cancel
/// requests for it did.
#[derive(Debug)]
pub(crate) struct SessionCtl {
    killed: AtomicU8,
    notify: Notify,
    backend_key: Option<(i32, i32)>,
    /// Cancel requests relayed to this session's backend (counted before
    /// they are sent, so that the relay sees the count by the time the
    /// backend can answer with `57014`).
    cancels_relayed: AtomicU64,
}

impl SessionCtl {
    /// Notes that a cancel request for this session is about to be
    /// relayed to its backend.
    pub(crate) fn note_cancel(&self) {
        self.cancels_relayed.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether a cancel request was ever relayed to this session's backend
    /// (or tried: a failed relay counts too, which errs on the side of the
    /// client's own cancel).
    pub(crate) fn cancel_relayed(&self) -> bool {
        self.cancels_relayed.load(Ordering::SeqCst) != 0
    }

    /// Asks the session to close (as a fault); `false` if it already was.
    pub(crate) fn kill(&self) -> bool {
        let first = self
            .killed
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        self.notify.notify_waiters();
        first
    }

    /// Completes once [`kill`](Self::kill) was called.
    pub(crate) async fn killed(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.killed.load(Ordering::Acquire) != 0 {
                return;
            }
            notified.await;
        }
    }
}

/// The open sessions.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    next_id: AtomicU64,
    sessions: Mutex<HashMap<u64, Arc<SessionCtl>>>,
}

impl Registry {
    /// Registers a session until the returned guard drops.
    pub(crate) fn register(self: &Arc<Self>, backend_key: Option<(i32, i32)>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let ctl = Arc::new(SessionCtl {
            killed: AtomicU8::new(0),
            notify: Notify::new(),
            backend_key,
            cancels_relayed: AtomicU64::new(0),
        });
        self.lock().insert(id, Arc::clone(&ctl));
        Registration {
            registry: Arc::clone(self),
            id,
            ctl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<SessionCtl>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every open session, in no particular order.
    pub(crate) fn all(&self) -> Vec<Arc<SessionCtl>> {
        self.lock().values().cloned().collect()
    }

    /// The open session whose upstream backend has this cancel key.
    pub(crate) fn with_backend_key(&self, pid: i32, secret: i32) -> Option<Arc<SessionCtl>> {
        self.lock()
            .values()
            .find(|ctl| ctl.backend_key == Some((pid, secret)))
            .cloned()
    }
}

/// A registered session; unregisters on drop.
#[derive(Debug)]
pub(crate) struct Registration {
    registry: Arc<Registry>,
    id: u64,
    pub(crate) ctl: Arc<SessionCtl>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}
