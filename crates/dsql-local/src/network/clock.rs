//! A timer thread with the kernel's precision (tens of microseconds) rather
//! than Tokio's (a millisecond, rounded up): a delay line of 0.5 ms each
//! way on Tokio's timer would add 1 to 1.5 ms each way.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Instant;

use tokio::sync::oneshot;

/// Wakes tasks at instants; the thread ends when the clock is dropped and
/// every pending wake has fired.
pub(crate) struct Clock {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a wake earlier than every pending one arrives, or the
    /// clock closes: a later one needs no signal, the thread will be up
    /// before it is due (under load, most chunks, which saves a context
    /// switch each).
    changed: Condvar,
}

#[derive(Default)]
struct State {
    pending: BinaryHeap<Wake>,
    /// Orders wakes at the same instant by arrival.
    seq: u64,
    closed: bool,
}

struct Wake {
    at: Instant,
    seq: u64,
    done: oneshot::Sender<()>,
}

impl Clock {
    pub(crate) fn start() -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            changed: Condvar::new(),
        });
        let for_thread = Arc::clone(&shared);
        thread::Builder::new()
            .name("dsql-local-clock".to_owned())
            .spawn(move || run(&for_thread))?;
        Ok(Self { shared })
    }

    /// Completes at `at` (at once when it has passed).
    pub(crate) async fn sleep_until(&self, at: Instant) {
        if at <= Instant::now() {
            return;
        }
        let (done, woken) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            state.seq += 1;
            let earliest = state.pending.peek().is_none_or(|next| at < next.at);
            let seq = state.seq;
            state.pending.push(Wake { at, seq, done });
            if earliest {
                self.shared.changed.notify_one();
            }
        }
        if woken.await.is_err() {
            // The thread is gone (it panicked): Tokio's coarser timer still
            // keeps the order and the lower bound.
            tokio::time::sleep_until(at.into()).await;
        }
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn run(shared: &Shared) {
    let mut state = shared.lock();
    let mut due = Vec::new();
    loop {
        let now = Instant::now();
        while state.pending.peek().is_some_and(|w| w.at <= now) {
            due.extend(state.pending.pop());
        }
        if !due.is_empty() {
            // Woken tasks may add wakes at once: not under the lock.
            drop(state);
            for wake in due.drain(..) {
                let _ = wake.done.send(());
            }
            state = shared.lock();
            continue;
        }
        state = match state.pending.peek() {
            Some(next) => {
                let wait = next.at.saturating_duration_since(now);
                shared
                    .changed
                    .wait_timeout(state, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None if state.closed => return,
            None => shared.changed.wait(state).unwrap_or_else(PoisonError::into_inner),
        };
    }
}

// The heap is a max-heap: the earliest wake compares greatest.
impl Ord for Wake {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Wake {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Wake {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Wake {}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn wakes_at_the_instant_and_not_before() {
        let clock = Clock::start().expect("clock thread");
        for micros in [300_u64, 500, 1_500] {
            let delay = Duration::from_micros(micros);
            let start = Instant::now();
            clock.sleep_until(start + delay).await;
            let slept = start.elapsed();
            assert!(slept >= delay, "{slept:?} < {delay:?}");
            // Tokio's wheel would round 300 µs up to a millisecond or more.
            assert!(
                slept < delay + Duration::from_millis(5),
                "{slept:?} for {delay:?}"
            );
        }
    }

    #[tokio::test]
    async fn wakes_in_order_of_their_instants() {
        let clock = std::sync::Arc::new(Clock::start().expect("clock thread"));
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for n in [3_u64, 1, 2] {
            let (clock, tx) = (clock.clone(), tx.clone());
            tokio::spawn(async move {
                clock.sleep_until(start + Duration::from_millis(n * 2)).await;
                let _ = tx.send(n);
            });
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some(n) = rx.recv().await {
            order.push(n);
        }
        assert_eq!(order, [1, 2, 3]);
    }
}
