use std::any::Any;
use std::fmt;
use std::sync::{Mutex, PoisonError};

/// A connection an operation keeps between two of its attempts, of a type
/// only the service that parked it knows.
///
/// Why it exists: a conflicted transaction backs off before its replay, so
/// that fewer transactions contend on the same rows at once. If the service
/// gives its connection back to a pool during that backoff, the pool hands
/// it at once to another transaction, and as many attempts run as before:
/// the backoff thins out nothing (Ethernet's backoff works because the
/// station backing off leaves its slot empty). Parking the connection in
/// the operation keeps the slot empty until the replay takes it back.
///
/// It lives in the record that a retry layer's copies of the request share
/// ([`Replay::replay`](crate::retry::Replay::replay)), so the replay finds
/// it; and when the retry gives up, the last copy is dropped and the
/// connection with it (a pooled connection then returns to its pool).
#[derive(Default)]
pub(crate) struct Parked(Mutex<Option<Box<dyn Any + Send>>>);

impl Parked {
    /// Keeps `value`; one parked before is dropped.
    pub(crate) fn park(&self, value: Box<dyn Any + Send>) {
        let previous = self.lock().replace(value);
        // Dropped outside the lock: dropping a pooled connection returns it
        // to its pool, which is not this lock's business.
        drop(previous);
    }

    /// Takes what is parked if it is a `C`; anything else stays parked.
    pub(crate) fn take<C: Any + Send>(&self) -> Option<C> {
        let mut slot = self.lock();
        match slot.take()?.downcast::<C>() {
            Ok(value) => Some(*value),
            Err(other) => {
                *slot = Some(other);
                None
            }
        }
    }

    pub(crate) fn is_parked(&self) -> bool {
        self.lock().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Box<dyn Any + Send>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Parked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parked")
            .field("occupied", &self.is_parked())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn takes_only_its_own_type_and_drops_what_is_replaced() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let parked = Parked::default();
        parked.park(Box::new(Counted(Arc::clone(&dropped))));
        assert!(parked.take::<u32>().is_none(), "another type stays parked");
        assert!(parked.is_parked());
        parked.park(Box::new(Counted(Arc::clone(&dropped))));
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "the first one is dropped");
        let taken = parked.take::<Counted>().expect("its own type");
        assert!(!parked.is_parked());
        drop(taken);
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
    }
}
