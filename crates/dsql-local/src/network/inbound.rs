//! The client-to-server direction: bytes read from the socket as they
//! arrive, stamped, and readable by the server half a round trip later.
//!
//! The task reading the socket stamps each chunk and asks the clock to wake
//! the server's reader when it is due; the server reads it straight from
//! the queue. One wake a chunk, no copy through another stream.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::ReadBuf;
use tokio::sync::Notify;

use super::clock::Due;
use super::in_flight::InFlight;

pub(super) struct Inbound {
    state: Mutex<State>,
    /// Signalled when the server made room, or went away.
    room: Notify,
}

#[derive(Default)]
struct State {
    chunks: InFlight,
    /// When the client's end of stream reaches the server.
    end_at: Option<Instant>,
    /// The server's reader, waiting for a chunk to be due.
    reader: Option<Waker>,
    /// The server's end is gone: nothing more is read from the client.
    server_gone: bool,
}

impl Inbound {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::default(),
            room: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the queue has room; false once the server is gone.
    pub(super) async fn room(&self) -> bool {
        loop {
            let notified = self.room.notified();
            {
                let state = self.lock();
                if state.server_gone {
                    return false;
                }
                if state.chunks.room() > 0 {
                    return true;
                }
            }
            notified.await;
        }
    }

    /// Waits until the server's end is gone.
    pub(super) async fn server_gone(&self) {
        loop {
            let notified = self.room.notified();
            if self.lock().server_gone {
                return;
            }
            notified.await;
        }
    }

    /// A chunk arrived from the client, due at `due` (the caller has the
    /// clock run [`Due::due`] then).
    pub(super) fn push(&self, due: Instant, chunk: Bytes) {
        self.lock().chunks.push(due, chunk);
    }

    /// The client's end of stream (or a read error), due at `due`.
    pub(super) fn end(&self, due: Instant) {
        self.lock().end_at.get_or_insert(due);
    }

    /// The server's end is gone.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        state.server_gone = true;
        state.chunks.clear();
        drop(state);
        self.room.notify_waiters();
    }

    /// The server reads: what is due, or its end of stream once due.
    pub(super) fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<()> {
        let mut state = self.lock();
        let now = Instant::now();
        let mut read = 0;
        for chunk in state.chunks.due(now) {
            let n = chunk.len().min(buf.remaining());
            if n == 0 {
                break;
            }
            buf.put_slice(&chunk[..n]);
            read += n;
        }
        if read > 0 {
            let made_room = state.chunks.consume(read);
            drop(state);
            if made_room {
                self.room.notify_waiters();
            }
            return Poll::Ready(());
        }
        let ended = state.chunks.is_empty() && state.end_at.is_some_and(|at| at <= now);
        if ended || buf.remaining() == 0 {
            return Poll::Ready(());
        }
        state.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Due for Inbound {
    /// A chunk (or the end of stream) is due: wake the server's reader.
    fn due(&self) {
        let reader = self.lock().reader.take();
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}
