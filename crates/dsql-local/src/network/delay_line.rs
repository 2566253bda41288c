//! A delay line between the accepted socket and the server: every chunk of
//! bytes, in either direction, reaches the other side `round trip ÷ 2` after
//! it arrived. Chunks in flight overlap (a pipelined batch is delayed once,
//! not once per message), as on a real network; bandwidth is not modelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::ClientIo;
use super::clock::Clock;
use crate::stats::{Counters, bump};

/// Bytes read at once from either side.
const CHUNK: usize = 16 * 1024;
/// Chunks in flight per direction: with [`CHUNK`], at most 1 MiB a
/// direction per connection waits in the line; a faster sender waits.
const IN_FLIGHT: usize = 64;

/// The network between clients and the server, shared by all connections.
pub(crate) struct DelayLine {
    one_way: Duration,
    clock: Arc<Clock>,
    counters: Arc<Counters>,
}

impl DelayLine {
    pub(crate) fn new(round_trip: Duration, counters: Arc<Counters>) -> std::io::Result<Self> {
        Ok(Self {
            one_way: round_trip / 2,
            clock: Arc::new(Clock::start()?),
            counters,
        })
    }

    /// Puts the line in front of an accepted socket; the server talks to
    /// what this returns. The line closes with the connection: the client's
    /// end of stream reaches the server, and the server's end closes the
    /// socket.
    pub(crate) fn insert(&self, tcp: TcpStream) -> ClientIo {
        let (server_end, line_end) = tokio::io::duplex(CHUNK * 4);
        let (client_read, client_write) = tcp.into_split();
        let (server_read, server_write) = tokio::io::split(line_end);
        let (one_way, clock, counters) = (self.one_way, Arc::clone(&self.clock), Arc::clone(&self.counters));
        tokio::spawn(async move {
            // A round trip is a turn of the conversation: the client speaks
            // after the server did (or for the first time).
            let server_spoke = AtomicBool::new(true);
            let inbound = carry(client_read, server_write, one_way, &clock, || {
                if server_spoke.swap(false, Ordering::Relaxed) {
                    bump(&counters.round_trips);
                }
            });
            let outbound = carry(server_read, client_write, one_way, &clock, || {
                server_spoke.store(true, Ordering::Relaxed);
            });
            tokio::pin!(inbound, outbound);
            tokio::select! {
                // The server closed: what the client still sends goes nowhere.
                () = &mut outbound => {}
                () = &mut inbound => outbound.await,
            }
        });
        ClientIo::Delayed {
            stream: server_end,
            peeked: None,
        }
    }
}

/// Moves bytes from `from` to `to`, each chunk `delay` after it was read;
/// ends `to` once `from` ends (or either fails).
async fn carry<R, W>(mut from: R, mut to: W, delay: Duration, clock: &Clock, mut on_chunk: impl FnMut())
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (line, mut arrivals) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let read = async move {
        let mut buf = vec![0_u8; CHUNK];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            on_chunk();
            let due = Instant::now() + delay;
            if line.send((due, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    };
    let write = async move {
        while let Some((due, bytes)) = arrivals.recv().await {
            clock.sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}
