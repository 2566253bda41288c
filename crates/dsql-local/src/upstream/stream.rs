//! The connection to the upstream: loopback TCP or a Unix-domain socket.

use std::io;

use tokio::net::{TcpStream, UnixStream, tcp, unix};
use tokio_util::either::Either;

use super::target::UpstreamAddr;

/// A connection to the upstream PostgreSQL.
pub(crate) type UpstreamStream = Either<TcpStream, UnixStream>;

/// The halves of an [`UpstreamStream`], for relaying both ways at once.
pub(crate) type UpstreamHalves = (
    Either<tcp::OwnedReadHalf, unix::OwnedReadHalf>,
    Either<tcp::OwnedWriteHalf, unix::OwnedWriteHalf>,
);

/// Connects to `addr`; a TCP connection sends each write at once (no Nagle).
pub(crate) async fn connect(addr: &UpstreamAddr) -> io::Result<UpstreamStream> {
    match addr {
        UpstreamAddr::Tcp { host, port } => {
            let stream = TcpStream::connect((host.as_str(), *port)).await?;
            stream.set_nodelay(true)?;
            Ok(Either::Left(stream))
        }
        UpstreamAddr::Unix { .. } => {
            let path = addr.socket_path().unwrap_or_default();
            UnixStream::connect(&path)
                .await
                .map(Either::Right)
                .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", path.display())))
        }
    }
}

/// Splits `stream` into halves owned separately, with no lock between them.
pub(crate) fn into_split(stream: UpstreamStream) -> UpstreamHalves {
    match stream {
        Either::Left(tcp) => {
            let (read, write) = tcp.into_split();
            (Either::Left(read), Either::Left(write))
        }
        Either::Right(unix) => {
            let (read, write) = unix.into_split();
            (Either::Right(read), Either::Right(write))
        }
    }
}
