//! The server-to-client direction: what the server writes is queued,
//! stamped, and sent to the socket by the clock's thread half a round trip
//! later, without a trip through a task. Only when the socket's buffer is
//! full does the connection's task take over, once the socket is writable.

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

use super::clock::Due;
use super::in_flight::InFlight;

/// Chunks sent in one system call.
const GATHER: usize = 16;

pub(super) struct Outbound {
    socket: OwnedWriteHalf,
    state: Mutex<State>,
    /// Signalled when a send would block, or the direction finished.
    stalled: Notify,
}

#[derive(Default)]
struct State {
    chunks: InFlight,
    /// When the server's end reaches the client, and how it ends.
    end: Option<(Instant, End)>,
    /// The server's writer, waiting for room.
    writer: Option<Waker>,
    /// A send would block: the connection's task sends once the socket is
    /// writable.
    blocked: bool,
    /// Nothing more is sent: the end was carried out, or the socket failed.
    finished: bool,
    failed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// The server shut its writing down: the client reads an end of stream.
    Shutdown,
    /// The server's end is gone: the socket closes.
    Close,
}

impl Outbound {
    pub(super) fn new(socket: OwnedWriteHalf) -> Self {
        Self {
            socket,
            state: Mutex::default(),
            stalled: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server writes `buf`, due at `due`: the caller has the clock run
    /// [`Due::due`] then.
    pub(super) fn poll_write(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        due: Instant,
    ) -> Poll<io::Result<usize>> {
        let mut state = self.lock();
        if state.failed || state.end.is_some() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = state.chunks.room();
        if room == 0 {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let taken = buf.len().min(room);
        state.chunks.push(due, Bytes::copy_from_slice(&buf[..taken]));
        Poll::Ready(Ok(taken))
    }

    /// Whether the server may still write (for its flush).
    pub(super) fn check(&self) -> io::Result<()> {
        if self.lock().failed {
            Err(io::ErrorKind::BrokenPipe.into())
        } else {
            Ok(())
        }
    }

    /// The server shut its writing down (at `due` for the client).
    pub(super) fn shutdown(&self, due: Instant) {
        self.lock().end.get_or_insert((due, End::Shutdown));
    }

    /// The server's end is gone (at `due` for the client), unless it shut
    /// down already.
    pub(super) fn close(&self, due: Instant) {
        self.lock().end.get_or_insert((due, End::Close));
    }

    /// Sends what is due, then carries out the end once it is due and
    /// nothing is left before it.
    fn send_due(&self) {
        let mut state = self.lock();
        state.blocked = false;
        if state.finished {
            return;
        }
        let now = Instant::now();
        loop {
            let mut slices = [IoSlice::new(&[]); GATHER];
            let mut count = 0;
            for (chunk, slice) in state.chunks.due(now).zip(&mut slices) {
                *slice = IoSlice::new(chunk);
                count += 1;
            }
            if count == 0 {
                break;
            }
            match self.socket.try_write_vectored(&slices[..count]) {
                Ok(sent) => state.consume(sent),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    state.blocked = true;
                    drop(state);
                    self.stalled.notify_one();
                    return;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    state.fail();
                    drop(state);
                    self.stalled.notify_one();
                    return;
                }
            }
        }
        if let Some((at, end)) = state.end
            && at <= now
            && state.chunks.is_empty()
        {
            let how = match end {
                End::Shutdown => Shutdown::Write,
                End::Close => Shutdown::Both,
            };
            // Fails only when the client is gone already.
            let _ = socket2::SockRef::from(self.socket.as_ref()).shutdown(how);
            state.finished = true;
            drop(state);
            self.stalled.notify_one();
        }
    }

    /// The connection's task: sends whenever the clock could not (the
    /// socket's buffer was full), until the direction finishes.
    pub(super) async fn flush(&self) {
        loop {
            let stalled = self.stalled.notified();
            let blocked = {
                let state = self.lock();
                if state.finished {
                    return;
                }
                state.blocked
            };
            if !blocked {
                stalled.await;
                continue;
            }
            if self.socket.writable().await.is_err() {
                let mut state = self.lock();
                state.fail();
                return;
            }
            self.send_due();
        }
    }
}

impl State {
    /// `sent` bytes left.
    fn consume(&mut self, sent: usize) {
        if self.chunks.consume(sent) {
            self.wake_writer();
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.finished = true;
        self.chunks.clear();
        self.wake_writer();
    }

    fn wake_writer(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
    }
}

impl Due for Outbound {
    fn due(&self) {
        self.send_due();
    }
}
