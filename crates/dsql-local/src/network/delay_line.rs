//! A delay line between the accepted socket and the server: every chunk of
//! bytes, in either direction, reaches the other side `round trip ÷ 2` after
//! it arrived. Chunks in flight overlap (a pipelined batch is delayed once,
//! not once per message), as on a real network; bandwidth is not modelled.
//!
//! The line costs the front end as little as it can, since every client's
//! benchmark pays for it: a chunk from the client wakes the server's reader
//! once, when due ([`inbound`](super::inbound)), and a chunk to the client
//! is sent by the clock's thread ([`outbound`](super::outbound)).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

use super::clock::Clock;
use super::inbound::Inbound;
use super::outbound::Outbound;
use crate::stats::{Counters, bump};

/// Bytes read from the client at once.
const CHUNK: usize = 16 * 1024;

/// The network between clients and the server, shared by all connections.
pub(crate) struct DelayLine {
    line: Arc<Line>,
}

struct Line {
    one_way: Duration,
    clock: Clock,
    counters: Arc<Counters>,
}

impl DelayLine {
    pub(crate) fn new(round_trip: Duration, counters: Arc<Counters>) -> io::Result<Self> {
        Ok(Self {
            line: Arc::new(Line {
                one_way: round_trip / 2,
                clock: Clock::start(Arc::clone(&counters))?,
                counters,
            }),
        })
    }

    /// Puts the line in front of an accepted socket; the server talks to
    /// what this returns. The line closes with the connection: the client's
    /// end of stream reaches the server, and dropping the server's end
    /// closes the socket (once what it wrote has arrived).
    pub(crate) fn insert(&self, tcp: TcpStream) -> DelayedStream {
        let (socket, writer) = tcp.into_split();
        let inbound = Arc::new(Inbound::new());
        let outbound = Arc::new(Outbound::new(writer));
        // A round trip is a turn of the conversation: the client speaks
        // after the server did (or for the first time).
        let server_spoke = Arc::new(AtomicBool::new(true));
        tokio::spawn(carry(
            Arc::clone(&self.line),
            socket,
            Arc::clone(&inbound),
            Arc::clone(&outbound),
            Arc::clone(&server_spoke),
        ));
        DelayedStream {
            line: Arc::clone(&self.line),
            inbound,
            outbound,
            server_spoke,
            peeked: None,
        }
    }
}

/// The connection's task: reads the client's bytes into the line as they
/// arrive, and sends the server's when the clock could not; ends when both
/// directions have.
async fn carry(
    line: Arc<Line>,
    mut socket: OwnedReadHalf,
    inbound: Arc<Inbound>,
    outbound: Arc<Outbound>,
    server_spoke: Arc<AtomicBool>,
) {
    let read = async {
        let mut buf = BytesMut::with_capacity(CHUNK);
        while inbound.room().await {
            buf.reserve(CHUNK);
            // Not `readable` and `try_read_buf` on a shared stream: those
            // keep the socket marked readable after a short read, which
            // costs a read that would block per chunk.
            match socket.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if server_spoke.swap(false, Ordering::Relaxed) {
                bump(&line.counters.round_trips);
            }
            let due = Instant::now() + line.one_way;
            inbound.push(due, buf.split().freeze());
            line.clock.at(due, Arc::clone(&inbound) as _);
        }
        // The client's end of stream travels the line too.
        let due = Instant::now() + line.one_way;
        inbound.end(due);
        line.clock.at(due, Arc::clone(&inbound) as _);
    };
    let read = async {
        // The server's end gone, what the client still sends goes nowhere.
        tokio::select! {
            () = read => {}
            () = inbound.server_gone() => {}
        }
    };
    tokio::join!(read, outbound.flush());
}

/// The server's end of a delay line.
pub(crate) struct DelayedStream {
    line: Arc<Line>,
    inbound: Arc<Inbound>,
    outbound: Arc<Outbound>,
    server_spoke: Arc<AtomicBool>,
    /// A byte read by [`peek`](Self::peek), returned by the next read.
    peeked: Option<u8>,
}

impl DelayedStream {
    /// Reads the first byte without consuming it; `Ok(0)` when the client
    /// closed.
    pub(crate) async fn peek(&mut self, first: &mut [u8; 1]) -> io::Result<usize> {
        if self.peeked.is_none() {
            let mut byte = [0_u8; 1];
            let mut buf = ReadBuf::new(&mut byte);
            std::future::poll_fn(|cx| self.inbound.poll_read(cx, &mut buf)).await;
            if buf.filled().is_empty() {
                return Ok(0);
            }
            self.peeked = Some(byte[0]);
        }
        first[0] = self.peeked.unwrap_or_default();
        Ok(1)
    }

    fn due(&self) -> Instant {
        Instant::now() + self.line.one_way
    }
}

impl AsyncRead for DelayedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(byte) = this.peeked.take_if(|_| buf.remaining() > 0) {
            buf.put_slice(&[byte]);
            return Poll::Ready(Ok(()));
        }
        this.inbound.poll_read(cx, buf).map(Ok)
    }
}

impl AsyncWrite for DelayedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let due = self.due();
        let written = self.outbound.poll_write(cx, buf, due);
        if let Poll::Ready(Ok(_)) = written {
            self.server_spoke.store(true, Ordering::Relaxed);
            self.line.clock.at(due, Arc::clone(&self.outbound) as _);
        }
        written
    }

    /// Written bytes are on the line already.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.outbound.check())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let due = self.due();
        self.outbound.shutdown(due);
        self.line.clock.at(due, Arc::clone(&self.outbound) as _);
        Poll::Ready(Ok(()))
    }
}

impl Drop for DelayedStream {
    fn drop(&mut self) {
        self.inbound.close();
        let due = self.due();
        self.outbound.close(due);
        self.line.clock.at(due, Arc::clone(&self.outbound) as _);
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpSocket};

    use super::*;

    /// A client socket with a small receive buffer, and the server's end of
    /// a line in front of its accepted peer.
    async fn pair(line: &DelayLine) -> (TcpStream, DelayedStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(16 * 1024).expect("buffer size");
        let (client, accepted) = tokio::join!(
            socket.connect(listener.local_addr().expect("addr")),
            listener.accept()
        );
        let (accepted, _) = accepted.expect("accept");
        (client.expect("connect"), line.insert(accepted))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_stops_reading_gets_everything_in_order_later() {
        let line = DelayLine::new(Duration::from_millis(2), Arc::default()).expect("line");
        let (mut client, mut server) = pair(&line).await;
        // More than the line (1 MiB) and the sockets hold: the server waits
        // for room, the clock finds the socket full and the connection's
        // task sends once it is writable.
        let sent: Vec<u8> = (0..8 * 1024 * 1024_u32).map(|i| (i % 251) as u8).collect();
        let writing = {
            let sent = sent.clone();
            tokio::spawn(async move {
                server.write_all(&sent).await.expect("written");
                server.shutdown().await.expect("shut down");
                server
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !writing.is_finished(),
            "the line held everything for a client that does not read"
        );
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.expect("read");
        assert!(
            received == sent,
            "{} bytes of {}, or out of order",
            received.len(),
            sent.len()
        );
        drop(writing.await.expect("writer"));
    }

    #[tokio::test]
    async fn the_client_is_heard_half_a_round_trip_later_and_its_end_too() {
        let round_trip = Duration::from_millis(40);
        let line = DelayLine::new(round_trip, Arc::default()).expect("line");
        let (mut client, mut server) = pair(&line).await;
        let started = Instant::now();
        client.write_all(b"ping").await.expect("written");
        client.shutdown().await.expect("shut down");
        let mut heard = Vec::new();
        server.read_to_end(&mut heard).await.expect("read");
        assert_eq!(heard, b"ping");
        assert!(started.elapsed() >= round_trip / 2, "{:?}", started.elapsed());
    }

    #[test]
    fn an_empty_write_sends_nothing_and_the_end_still_arrives() {
        // On a thread of its own: a line stuck on the empty chunk would
        // block the runtime, and the test must fail rather than hang.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let line = DelayLine::new(Duration::from_millis(2), Arc::default()).expect("line");
                let (mut client, mut server) = pair(&line).await;
                assert_eq!(server.write(&[]).await.expect("written"), 0);
                server.shutdown().await.expect("shut down");
                let mut received = Vec::new();
                client.read_to_end(&mut received).await.expect("read");
                let _ = done.send(received);
            });
        });
        let received = finished
            .recv_timeout(Duration::from_secs(10))
            .expect("the server's end arrives after an empty write");
        assert!(received.is_empty());
    }
}
