//! The client's side of the network: a plain TCP stream, or one behind a
//! delay line that models a region's round trip
//! ([`LocalConfigBuilder::network_round_trip`](crate::LocalConfigBuilder::network_round_trip)).
//!
//! - this module: [`ClientIo`], what the handshake and the relay read and
//!   write, whichever it is;
//! - [`delay_line`]: the line itself, each direction delayed from accept
//!   on, the handshake included, round trips counted; [`inbound`] and
//!   [`outbound`], its two directions, each holding its bytes
//!   [`in_flight`];
//! - [`clock`]: a timer finer than Tokio's millisecond wheel, so that half a
//!   millisecond is half a millisecond.

mod clock;
mod delay_line;
mod in_flight;
mod inbound;
mod outbound;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub(crate) use self::delay_line::{DelayLine, DelayedStream};

/// A client connection as the server sees it.
pub(crate) enum ClientIo {
    /// The accepted socket itself.
    Tcp(TcpStream),
    /// The server's end of a delay line in front of the accepted socket.
    Delayed(DelayedStream),
}

impl ClientIo {
    /// Reads the first byte without consuming it (to tell direct TLS from
    /// an `SSLRequest`); `Ok(0)` when the client closed.
    pub(crate) async fn peek(&mut self, first: &mut [u8; 1]) -> io::Result<usize> {
        match self {
            Self::Tcp(tcp) => tcp.peek(first).await,
            Self::Delayed(line) => line.peek(first).await,
        }
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Delayed(line) => Pin::new(line).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Delayed(line) => Pin::new(line).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Delayed(line) => Pin::new(line).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Delayed(line) => Pin::new(line).poll_shutdown(cx),
        }
    }
}
