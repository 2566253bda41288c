//! The bytes in flight in one direction of the line: chunks stamped with
//! the instant they are due, bounded in bytes.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Buf, Bytes};

/// Bytes a direction holds at most; a faster sender waits.
const MAX_QUEUED: usize = 1024 * 1024;

#[derive(Default)]
pub(super) struct InFlight {
    chunks: VecDeque<(Instant, Bytes)>,
    queued: usize,
}

impl InFlight {
    /// Bytes that may still be queued.
    pub(super) fn room(&self) -> usize {
        MAX_QUEUED.saturating_sub(self.queued)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Queues `chunk`; an empty one is nothing in flight (kept, it would
    /// never be consumed, and the direction never be empty again).
    pub(super) fn push(&mut self, due: Instant, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.queued += chunk.len();
        self.chunks.push_back((due, chunk));
    }

    /// The chunks due at `now`, oldest first.
    pub(super) fn due(&self, now: Instant) -> impl Iterator<Item = &Bytes> {
        self.chunks
            .iter()
            .take_while(move |(due, _)| *due <= now)
            .map(|(_, chunk)| chunk)
    }

    /// Drops the first `n` bytes (delivered); whether that made room in a
    /// full direction, for the waiting sender.
    pub(super) fn consume(&mut self, mut n: usize) -> bool {
        let was_full = self.room() == 0;
        self.queued -= n;
        while n > 0 {
            let Some((_, chunk)) = self.chunks.front_mut() else {
                break;
            };
            let taken = n.min(chunk.len());
            chunk.advance(taken);
            n -= taken;
            if chunk.is_empty() {
                self.chunks.pop_front();
            }
        }
        was_full && self.room() > 0
    }

    pub(super) fn clear(&mut self) {
        self.chunks.clear();
        self.queued = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_chunk_is_not_queued() {
        let mut line = InFlight::default();
        line.push(Instant::now(), Bytes::new());
        assert!(line.is_empty());
        assert_eq!(line.room(), MAX_QUEUED);
    }

    #[test]
    fn consuming_a_full_direction_makes_room_once() {
        let mut line = InFlight::default();
        let now = Instant::now();
        line.push(now, Bytes::from(vec![0; MAX_QUEUED / 2]));
        line.push(now, Bytes::from(vec![1; MAX_QUEUED / 2]));
        assert_eq!(line.room(), 0);
        assert!(line.consume(MAX_QUEUED / 2 + 1), "room for the sender");
        assert!(!line.consume(1), "not full before");
        let left: usize = line.due(now).map(Bytes::len).sum();
        assert_eq!(left, MAX_QUEUED / 2 - 2);
        assert_eq!(line.due(now).next().map(|chunk| chunk[0]), Some(1));
    }
}
