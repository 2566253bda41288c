//! A timer thread with the kernel's precision (tens of microseconds) rather
//! than Tokio's (a millisecond, rounded up): a delay line of 0.5 ms each
//! way on Tokio's timer would add 1 to 1.5 ms each way.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Instant;

use tokio::sync::oneshot;

/// Wakes tasks at instants; the thread ends when the clock is dropped and
/// every pending wake has fired.
pub(crate) struct Clock {
    wakes: mpsc::Sender<Wake>,
}

struct Wake {
    at: Instant,
    /// Orders wakes at the same instant by arrival.
    seq: u64,
    done: oneshot::Sender<()>,
}

impl Clock {
    pub(crate) fn start() -> io::Result<Self> {
        let (wakes, rx) = mpsc::channel();
        thread::Builder::new()
            .name("dsql-local-clock".to_owned())
            .spawn(move || run(&rx))?;
        Ok(Self { wakes })
    }

    /// Completes at `at` (at once when it has passed).
    pub(crate) async fn sleep_until(&self, at: Instant) {
        if at <= Instant::now() {
            return;
        }
        let (done, woken) = oneshot::channel();
        let wake = Wake { at, seq: 0, done };
        if self.wakes.send(wake).is_err() {
            // The thread is gone (it panicked): Tokio's coarser timer still
            // keeps the order and the lower bound.
            tokio::time::sleep_until(at.into()).await;
            return;
        }
        let _ = woken.await;
    }
}

fn run(rx: &mpsc::Receiver<Wake>) {
    let mut pending = BinaryHeap::new();
    let mut seq = 0_u64;
    loop {
        let now = Instant::now();
        while pending.peek().is_some_and(|w: &Wake| w.at <= now) {
            if let Some(wake) = pending.pop() {
                let _ = wake.done.send(());
            }
        }
        let received = match pending.peek() {
            Some(next) => rx.recv_timeout(next.at.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(mut wake) => {
                seq += 1;
                wake.seq = seq;
                pending.push(wake);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => match pending.peek() {
                Some(next) => thread::sleep(next.at.saturating_duration_since(Instant::now())),
                None => return,
            },
        }
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
