//! The connection to the upstream: TCP, or a Unix-domain socket where the
//! platform has them.

use std::io;
use std::path::Path;

use tokio::net::{TcpStream, tcp};
#[cfg(unix)]
use tokio::net::{UnixStream, unix};
#[cfg(unix)]
use tokio_util::either::Either;

use super::target::{UpstreamAddr, socket_path};

/// A connection to the upstream PostgreSQL.
#[cfg(unix)]
pub(crate) type UpstreamStream = Either<TcpStream, UnixStream>;
/// A connection to the upstream PostgreSQL.
#[cfg(not(unix))]
pub(crate) type UpstreamStream = TcpStream;

/// The halves of an [`UpstreamStream`], for relaying both ways at once.
#[cfg(unix)]
pub(crate) type UpstreamHalves = (
    Either<tcp::OwnedReadHalf, unix::OwnedReadHalf>,
    Either<tcp::OwnedWriteHalf, unix::OwnedWriteHalf>,
);
/// The halves of an [`UpstreamStream`], for relaying both ways at once.
#[cfg(not(unix))]
pub(crate) type UpstreamHalves = (tcp::OwnedReadHalf, tcp::OwnedWriteHalf);

/// Connects to `addr`; a TCP connection sends each write at once (no Nagle).
pub(crate) async fn connect(addr: &UpstreamAddr) -> io::Result<UpstreamStream> {
    match addr {
        UpstreamAddr::Tcp { host, port } => {
            let stream = TcpStream::connect((host.as_str(), *port)).await?;
            stream.set_nodelay(true)?;
            #[cfg(unix)]
            let stream = Either::Left(stream);
            Ok(stream)
        }
        UpstreamAddr::Unix { dir, port } => connect_unix(&socket_path(dir, *port)).await,
    }
}

#[cfg(unix)]
async fn connect_unix(path: &Path) -> io::Result<UpstreamStream> {
    let mut attempts = 0;
    loop {
        match UnixStream::connect(path).await {
            Ok(stream) => return Ok(Either::Right(stream)),
            // A full listen backlog: TCP waits for room, a Unix-domain
            // socket answers EAGAIN at once. Wait a little as TCP would.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock && attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            Err(error) => {
                return Err(io::Error::new(
                    error.kind(),
                    format!("{}: {error}", path.display()),
                ));
            }
        }
    }
}

#[cfg(not(unix))]
async fn connect_unix(_path: &Path) -> io::Result<UpstreamStream> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "Unix-domain sockets are not supported on this platform",
    ))
}

/// Splits `stream` into halves owned separately, with no lock between them.
pub(crate) fn into_split(stream: UpstreamStream) -> UpstreamHalves {
    #[cfg(unix)]
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
    #[cfg(not(unix))]
    stream.into_split()
}
