//! Watching a connection's PostgreSQL framing, both ways, to know what
//! tokio-postgres does not tell: the transaction status of the last
//! `ReadyForQuery`, whether a reply is still outstanding, and how many
//! statements were sent and completed.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The transaction status of the last `ReadyForQuery` the server sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionStatus {
    /// Not in a transaction block.
    Idle,
    /// In a transaction block.
    InTransaction,
    /// In a failed transaction block: statements are refused until it ends.
    Failed,
    /// No `ReadyForQuery` yet.
    Unknown,
}

/// Counters of one connection's traffic, shared by its stream and its
/// [`PgConnection`](super::PgConnection).
#[derive(Debug)]
pub(crate) struct Wire {
    /// The last `ReadyForQuery` status byte (0 before the first).
    status: AtomicU8,
    /// Replies still due for sync points (`Query`, `Sync`, `FunctionCall`,
    /// the startup) whose batch could change the transaction status: all
    /// but the `Close` + `Sync` that tokio-postgres sends when a statement
    /// is dropped. PostgreSQL ignores `Sync` in copy-in mode, so this may
    /// stay above zero after a `COPY`; it never falls below the truth, and
    /// [`Wire::resynchronized`] resets it.
    significant: AtomicI64,
    /// Set by [`Wire::resynchronized`]; the stream then forgets the replies
    /// it still expected.
    resync: AtomicBool,
    /// Statements sent: `Query` and `Execute` messages.
    statements: AtomicU64,
    /// `CommandComplete` messages received.
    completed: AtomicU64,
}

impl Default for Wire {
    fn default() -> Self {
        Self {
            status: AtomicU8::new(0),
            // The startup ends with a `ReadyForQuery` of its own.
            significant: AtomicI64::new(1),
            resync: AtomicBool::new(false),
            statements: AtomicU64::new(0),
            completed: AtomicU64::new(0),
        }
    }
}

/// Statements sent and completed at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    pub(crate) sent: u64,
    pub(crate) completed: u64,
}

impl Wire {
    pub(crate) fn status(&self) -> TransactionStatus {
        match self.status.load(Ordering::Acquire) {
            b'I' => TransactionStatus::Idle,
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            _ => TransactionStatus::Unknown,
        }
    }

    /// Whether the connection is provably at rest: outside a transaction,
    /// and no reply outstanding that could change that.
    pub(crate) fn is_idle(&self) -> bool {
        self.significant.load(Ordering::Acquire) <= 0 && self.status() == TransactionStatus::Idle
    }

    /// After a round trip that has drained every earlier reply, nothing is
    /// outstanding (this forgets the `Sync`s a `COPY` made the server
    /// ignore).
    pub(crate) fn resynchronized(&self) {
        self.significant.store(0, Ordering::Release);
        self.resync.store(true, Ordering::Release);
    }

    pub(crate) fn progress(&self) -> Progress {
        Progress {
            sent: self.statements.load(Ordering::Acquire),
            completed: self.completed.load(Ordering::Acquire),
        }
    }
}

/// What the stream knows of the replies it still expects, in order.
#[derive(Debug)]
struct Expected {
    /// One entry per sync point sent and not yet answered: whether its
    /// batch could change the transaction status.
    replies: VecDeque<bool>,
    /// Whether the batch being sent (since the last sync point) could.
    batch: bool,
}

impl Expected {
    fn new() -> Self {
        Self {
            replies: VecDeque::from([true]),
            batch: false,
        }
    }

    fn sent(&mut self, wire: &Wire, tag: u8) {
        self.forget_if_resynchronized(wire);
        let sync_point = match tag {
            b'Q' => {
                wire.statements.fetch_add(1, Ordering::AcqRel);
                Some(true)
            }
            b'F' => Some(true),
            b'S' => Some(std::mem::take(&mut self.batch)),
            b'E' => {
                wire.statements.fetch_add(1, Ordering::AcqRel);
                self.batch = true;
                None
            }
            // Closing a statement or portal, or flushing, changes no
            // transaction status.
            b'C' | b'H' => None,
            _ => {
                self.batch = true;
                None
            }
        };
        if let Some(significant) = sync_point {
            self.replies.push_back(significant);
            if significant {
                wire.significant.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    fn received(&mut self, wire: &Wire, tag: u8, first: u8) {
        self.forget_if_resynchronized(wire);
        match tag {
            b'C' => {
                wire.completed.fetch_add(1, Ordering::AcqRel);
            }
            b'Z' => {
                wire.status.store(first, Ordering::Release);
                if self.replies.pop_front() == Some(true) {
                    wire.significant.fetch_sub(1, Ordering::AcqRel);
                }
            }
            _ => {}
        }
    }

    fn forget_if_resynchronized(&mut self, wire: &Wire) {
        if wire.resync.swap(false, Ordering::AcqRel) {
            self.replies.clear();
        }
    }
}

/// An incremental parser of one direction's messages: a tag byte and a
/// big-endian length that counts itself, then the body. The first
/// frontend message (startup or cancel request) has no tag.
#[derive(Debug)]
struct Framing {
    header: [u8; 5],
    have: usize,
    /// Body bytes left to skip in the current message.
    remaining: usize,
    /// The current message's tag, while its first body byte is awaited.
    want_first: Option<u8>,
    untagged_first: bool,
}

impl Framing {
    fn new(untagged_first: bool) -> Self {
        Self {
            header: [0; 5],
            have: if untagged_first { 1 } else { 0 },
            remaining: 0,
            want_first: None,
            untagged_first,
        }
    }

    /// Feeds `bytes`; calls `on_message(tag, first_body_byte)` once per
    /// message (with 0 for an empty body).
    fn feed(&mut self, mut bytes: &[u8], mut on_message: impl FnMut(u8, u8)) {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                if let Some(tag) = self.want_first.take() {
                    on_message(tag, bytes[0]);
                }
                let skip = self.remaining.min(bytes.len());
                self.remaining -= skip;
                bytes = &bytes[skip..];
                continue;
            }
            let take = (5 - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have < 5 {
                continue;
            }
            let tag = self.header[0];
            let length = u32::from_be_bytes([self.header[1], self.header[2], self.header[3], self.header[4]]);
            let body = (length as usize).saturating_sub(4);
            self.have = 0;
            if std::mem::take(&mut self.untagged_first) {
                // The startup message: no tag, nothing to report.
                self.remaining = body;
                continue;
            }
            if body == 0 {
                on_message(tag, 0);
            } else {
                self.remaining = body;
                self.want_first = Some(tag);
            }
        }
    }
}

/// A stream that watches the PostgreSQL messages going through it.
pub(crate) struct WireStream<S> {
    inner: S,
    wire: Arc<Wire>,
    expected: Expected,
    frontend: Framing,
    backend: Framing,
}

impl<S> WireStream<S> {
    pub(crate) fn new(inner: S, wire: Arc<Wire>) -> Self {
        Self {
            inner,
            wire,
            expected: Expected::new(),
            frontend: Framing::new(true),
            backend: Framing::new(false),
        }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WireStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let (wire, expected) = (&this.wire, &mut this.expected);
            this.backend.feed(&buf.filled()[before..], |tag, first| {
                expected.received(wire, tag, first)
            });
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WireStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = result {
            let (wire, expected) = (&this.wire, &mut this.expected);
            this.frontend
                .feed(&buf[..written], |tag, _| expected.sent(wire, tag));
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    struct Both {
        wire: Wire,
        expected: Expected,
        front: Framing,
        back: Framing,
    }

    impl Both {
        fn new() -> Self {
            Self {
                wire: Wire::default(),
                expected: Expected::new(),
                front: Framing::new(true),
                back: Framing::new(false),
            }
        }

        fn send(&mut self, bytes: &[u8], split: usize) {
            for chunk in bytes.chunks(split) {
                let (wire, expected) = (&self.wire, &mut self.expected);
                self.front.feed(chunk, |tag, _| expected.sent(wire, tag));
            }
        }

        fn receive(&mut self, bytes: &[u8], split: usize) {
            for chunk in bytes.chunks(split) {
                let (wire, expected) = (&self.wire, &mut self.expected);
                self.back
                    .feed(chunk, |tag, first| expected.received(wire, tag, first));
            }
        }
    }

    #[test]
    fn follows_both_directions_in_any_split() {
        let mut frontend = vec![0, 0, 0, 8, 0, 3, 0, 0]; // startup
        frontend.extend(message(b'Q', b"BEGIN\0"));
        frontend.extend(message(b'P', b"\0SELECT 1\0\0\0"));
        frontend.extend(message(b'E', b"\0\0\0\0\0"));
        frontend.extend(message(b'S', b""));
        let mut backend = message(b'Z', b"I");
        backend.extend(message(b'C', b"BEGIN\0"));
        backend.extend(message(b'Z', b"T"));
        backend.extend(message(b'C', b"SELECT 1\0"));
        backend.extend(message(b'Z', b"T"));
        for split in 1..9 {
            let mut both = Both::new();
            both.send(&frontend, split);
            assert!(!both.wire.is_idle());
            both.receive(&backend, split);
            assert_eq!(
                both.wire.status(),
                TransactionStatus::InTransaction,
                "split {split}"
            );
            assert_eq!(both.wire.significant.load(Ordering::Relaxed), 0);
            assert_eq!(
                both.wire.progress(),
                Progress {
                    sent: 2,
                    completed: 2
                }
            );
            assert!(!both.wire.is_idle(), "in a transaction");
        }
    }

    #[test]
    fn an_outstanding_reply_is_not_idle_unless_it_only_closes_a_statement() {
        let mut both = Both::new();
        both.send(&[0, 0, 0, 8, 0, 3, 0, 0], 8);
        both.receive(&message(b'Z', b"I"), 64);
        assert!(both.wire.is_idle());
        // A dropped statement: Close + Sync, its reply still to come.
        let mut close = message(b'C', b"Ss0\0");
        close.extend(message(b'S', b""));
        both.send(&close, 64);
        assert!(
            both.wire.is_idle(),
            "closing a statement changes no transaction status"
        );
        // A ROLLBACK queued by a dropped transaction: not at rest until answered.
        both.send(&message(b'Q', b"ROLLBACK\0"), 64);
        assert!(!both.wire.is_idle());
        both.receive(&message(b'Z', b"I"), 64); // the Close's reply
        assert!(!both.wire.is_idle());
        both.receive(&message(b'Z', b"I"), 64); // the ROLLBACK's
        assert!(both.wire.is_idle());
    }

    #[test]
    fn a_resynchronization_forgets_ignored_syncs() {
        let mut both = Both::new();
        both.send(&[0, 0, 0, 8, 0, 3, 0, 0], 8);
        both.receive(&message(b'Z', b"I"), 64);
        // copy_in: Bind/Execute/Sync, then CopyData/CopyDone/Sync; the first
        // Sync is ignored in copy-in mode: one ReadyForQuery for two.
        let mut copy = message(b'B', b"\0\0\0\0\0\0\0");
        copy.extend(message(b'E', b"\0\0\0\0\0"));
        copy.extend(message(b'S', b""));
        copy.extend(message(b'd', b"1\n"));
        copy.extend(message(b'c', b""));
        copy.extend(message(b'S', b""));
        both.send(&copy, 64);
        both.receive(&message(b'Z', b"I"), 64);
        assert!(!both.wire.is_idle(), "one reply looks outstanding");
        both.send(&message(b'Q', b"\0"), 64);
        both.receive(&message(b'Z', b"I"), 64);
        both.wire.resynchronized();
        assert!(both.wire.is_idle());
        both.send(&message(b'Q', b"SELECT 1\0"), 64);
        both.receive(&message(b'Z', b"I"), 64);
        assert!(both.wire.is_idle(), "counts stay aligned after the reset");
    }
}
