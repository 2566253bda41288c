//! A timer thread with the kernel's precision (tens of microseconds) rather
//! than Tokio's (a millisecond, rounded up): a delay line of 0.5 ms each
//! way on Tokio's timer would add 1 to 1.5 ms each way.
//!
//! What is due runs on this thread ([`Due::due`]): waking a reader, or
//! sending bytes to a socket without a trip through a task.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Instant;

use crate::stats::Counters;

/// Something that happens at an instant, on the clock's thread: it must
/// not block (a non-blocking send, a wake).
pub(crate) trait Due: Send + Sync {
    fn due(&self);
}

/// Runs what is due at its instant; the thread ends when the clock is
/// dropped and everything pending has run.
pub(crate) struct Clock {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when an entry earlier than every pending one arrives, or
    /// the clock closes: a later one needs no signal, the thread will be up
    /// before it is due (under load, most entries, which saves a context
    /// switch each).
    changed: Condvar,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct State {
    pending: BinaryHeap<Entry>,
    /// Orders entries at the same instant by arrival.
    seq: u64,
    closed: bool,
}

struct Entry {
    at: Instant,
    seq: u64,
    what: Arc<dyn Due>,
}

impl Clock {
    /// Starts the thread; each delivery, and how late it ran, is counted
    /// in `counters`.
    pub(crate) fn start(counters: Arc<Counters>) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            changed: Condvar::new(),
            counters,
        });
        let for_thread = Arc::clone(&shared);
        thread::Builder::new()
            .name("dsql-local-clock".to_owned())
            .spawn(move || run(&for_thread))?;
        Ok(Self { shared })
    }

    /// Runs `what` at `at`, on the clock's thread; at once, on the
    /// caller's, when `at` has passed.
    pub(crate) fn at(&self, at: Instant, what: Arc<dyn Due>) {
        if at <= Instant::now() {
            self.shared.counters.count_delivery(at.elapsed());
            what.due();
            return;
        }
        let mut state = self.shared.lock();
        state.seq += 1;
        let earliest = state.pending.peek().is_none_or(|next| at < next.at);
        let seq = state.seq;
        state.pending.push(Entry { at, seq, what });
        if earliest {
            self.shared.changed.notify_one();
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
    precise_timers();
    let mut state = shared.lock();
    let mut due = Vec::new();
    loop {
        let now = Instant::now();
        while state.pending.peek().is_some_and(|entry| entry.at <= now) {
            due.extend(state.pending.pop());
        }
        if !due.is_empty() {
            // What runs may schedule more at once: not under the lock.
            drop(state);
            for entry in due.drain(..) {
                shared.counters.count_delivery(entry.at.elapsed());
                entry.what.due();
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

/// Linux lets a sleeping thread's timer fire up to its *timer slack* late
/// (50 µs by default) to batch wake-ups. With the default, a line of
/// 500 µs each way ran its entries 85–95 µs late on average under load;
/// with 1 ns, 45–65 µs (30–45 µs idle). Best effort: a kernel that refuses
/// leaves the default, which the figures show (see
/// `StatsSnapshot::line_late_us`).
#[cfg(target_os = "linux")]
fn precise_timers() {
    if let Err(error) = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1)) {
        tracing::debug!(%error, "the delay line keeps the default timer slack");
    }
}

#[cfg(not(target_os = "linux"))]
fn precise_timers() {}

// The heap is a max-heap: the earliest entry compares greatest.
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Sends its tag and the instant it ran.
    struct Tagged(u64, Mutex<mpsc::Sender<(u64, Instant)>>);

    impl Due for Tagged {
        fn due(&self) {
            let _ = self.1.lock().expect("sender").send((self.0, Instant::now()));
        }
    }

    #[test]
    fn runs_at_the_instant_and_not_before() {
        let clock = Clock::start(Arc::default()).expect("clock thread");
        let (tx, rx) = mpsc::channel();
        for micros in [300_u64, 500, 1_500] {
            let delay = Duration::from_micros(micros);
            let start = Instant::now();
            clock.at(start + delay, Arc::new(Tagged(micros, Mutex::new(tx.clone()))));
            let (_, ran) = rx.recv().expect("ran");
            let slept = ran - start;
            assert!(slept >= delay, "{slept:?} < {delay:?}");
            // Tokio's wheel would round 300 µs up to a millisecond or more.
            assert!(
                slept < delay + Duration::from_millis(5),
                "{slept:?} for {delay:?}"
            );
        }
    }

    #[test]
    fn runs_in_order_of_the_instants() {
        let clock = Clock::start(Arc::default()).expect("clock thread");
        let start = Instant::now();
        let (tx, rx) = mpsc::channel();
        for n in [3_u64, 1, 2] {
            clock.at(
                start + Duration::from_millis(n * 2),
                Arc::new(Tagged(n, Mutex::new(tx.clone()))),
            );
        }
        drop(tx);
        let order: Vec<u64> = rx.iter().map(|(n, _)| n).collect();
        assert_eq!(order, [1, 2, 3]);
    }

    #[test]
    fn counts_each_delivery_and_its_lateness() {
        let counters = Arc::new(Counters::default());
        let clock = Clock::start(Arc::clone(&counters)).expect("clock thread");
        let (tx, rx) = mpsc::channel();
        let now = Instant::now();
        // One on the clock's thread, one past due (run by the caller).
        let due = [
            (1, now + Duration::from_millis(2)),
            (2, now - Duration::from_millis(3)),
        ];
        for (tag, at) in due {
            clock.at(at, Arc::new(Tagged(tag, Mutex::new(tx.clone()))));
        }
        // Each was counted before it ran, so no later than it ran.
        let mut at_most = Duration::ZERO;
        for _ in 0..2 {
            let (tag, ran) = rx.recv_timeout(Duration::from_secs(5)).expect("ran");
            let (_, at) = due.iter().find(|(t, _)| *t == tag).expect("a scheduled tag");
            at_most += ran - *at;
        }
        let load =
            |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(load(&counters.line_deliveries), 2);
        let late_us = load(&counters.line_late_us);
        assert!(
            (3_000..=at_most.as_micros()).contains(&u128::from(late_us)),
            "{late_us} µs late, at most {at_most:?}"
        );
    }

    #[test]
    fn runs_what_is_past_due_at_once() {
        let clock = Clock::start(Arc::default()).expect("clock thread");
        let (tx, rx) = mpsc::channel();
        clock.at(Instant::now(), Arc::new(Tagged(7, Mutex::new(tx))));
        assert_eq!(rx.try_recv().map(|(n, _)| n), Ok(7));
    }
}
