//! Watching a connection's PostgreSQL framing, both ways, to know what
//! tokio-postgres does not tell: the transaction status of the last
//! `ReadyForQuery`, whether a reply is still outstanding, and how many
//! statements were sent and completed.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
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
    /// Sync points sent (`Query`, `Sync`, `FunctionCall`, the startup)
    /// less `ReadyForQuery` received. PostgreSQL ignores `Sync` in copy-in
    /// mode, so this may stay above zero after a `COPY`; it never falls
    /// below the truth, and [`Wire::resynchronized`] resets it.
    awaiting: AtomicI64,
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
            awaiting: AtomicI64::new(1),
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
    /// with no reply outstanding.
    pub(crate) fn is_idle(&self) -> bool {
        self.awaiting.load(Ordering::Acquire) <= 0 && self.status() == TransactionStatus::Idle
    }

    /// After a round trip that has drained every earlier reply, nothing is
    /// outstanding (this forgets the `Sync`s a `COPY` made the server
    /// ignore).
    pub(crate) fn resynchronized(&self) {
        self.awaiting.store(0, Ordering::Release);
    }

    pub(crate) fn progress(&self) -> Progress {
        Progress {
            sent: self.statements.load(Ordering::Acquire),
            completed: self.completed.load(Ordering::Acquire),
        }
    }

    fn sent(&self, tag: u8) {
        match tag {
            b'Q' => {
                self.statements.fetch_add(1, Ordering::AcqRel);
                self.awaiting.fetch_add(1, Ordering::AcqRel);
            }
            b'E' => {
                self.statements.fetch_add(1, Ordering::AcqRel);
            }
            b'S' | b'F' => {
                self.awaiting.fetch_add(1, Ordering::AcqRel);
            }
            _ => {}
        }
    }

    fn received(&self, tag: u8, first: u8) {
        match tag {
            b'C' => {
                self.completed.fetch_add(1, Ordering::AcqRel);
            }
            b'Z' => {
                self.status.store(first, Ordering::Release);
                self.awaiting.fetch_sub(1, Ordering::AcqRel);
            }
            _ => {}
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
    frontend: Framing,
    backend: Framing,
}

impl<S> WireStream<S> {
    pub(crate) fn new(inner: S, wire: Arc<Wire>) -> Self {
        Self {
            inner,
            wire,
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
            let wire = &this.wire;
            this.backend
                .feed(&buf.filled()[before..], |tag, first| wire.received(tag, first));
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WireStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = result {
            let wire = &this.wire;
            this.frontend.feed(&buf[..written], |tag, _| wire.sent(tag));
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
            let wire = Wire::default();
            let (mut front, mut back) = (Framing::new(true), Framing::new(false));
            for chunk in frontend.chunks(split) {
                front.feed(chunk, |tag, _| wire.sent(tag));
            }
            assert!(!wire.is_idle());
            for chunk in backend.chunks(split) {
                back.feed(chunk, |tag, first| wire.received(tag, first));
            }
            assert_eq!(wire.status(), TransactionStatus::InTransaction, "split {split}");
            assert_eq!(wire.awaiting.load(Ordering::Relaxed), 0);
            assert_eq!(
                wire.progress(),
                Progress {
                    sent: 2,
                    completed: 2
                }
            );
            assert!(!wire.is_idle(), "in a transaction");
        }
    }

    #[test]
    fn an_outstanding_reply_is_not_idle() {
        let wire = Wire::default();
        let mut back = Framing::new(false);
        back.feed(&message(b'Z', b"I"), |tag, first| wire.received(tag, first));
        assert!(wire.is_idle());
        let mut front = Framing::new(false);
        front.feed(&message(b'Q', b"ROLLBACK\0"), |tag, _| wire.sent(tag));
        assert!(!wire.is_idle());
    }
}
