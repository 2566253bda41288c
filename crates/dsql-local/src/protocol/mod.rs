//! PostgreSQL v3 wire protocol: the few pieces `dsql-local` needs.
//!
//! - [`startup`]: untagged startup packets (`SSLRequest`, `GSSENCRequest`,
//!   `CancelRequest`, `StartupMessage`);
//! - [`frame`]: tagged messages, read exactly or split from a stream into
//!   [`Frame`]s without copying;
//! - [`budget`]: the one bound on what all message buffers hold together;
//! - [`error_response`]: building and reading `ErrorResponse`s;
//! - this module: the writers of the other messages `dsql-local` sends.

mod budget;
mod error_response;
mod frame;
#[cfg(test)]
mod fuzz_tests;
mod startup;
#[cfg(test)]
mod tests;

use std::io;

pub(crate) use self::budget::MemoryBudget;
pub(crate) use self::error_response::{ErrorResponse, error_field};
pub(crate) use self::frame::{Frame, FrameReader, read_message};
#[cfg(test)]
pub(crate) use self::startup::{MAX_STARTUP_LEN, read_startup};
pub(crate) use self::startup::{StartupMessage, StartupPacket, read_startup_bounded, startup_message};

/// `SSLRequest` code.
pub(crate) const SSL_REQUEST: u32 = 80_877_103;
/// `GSSENCRequest` code.
pub(crate) const GSSENC_REQUEST: u32 = 80_877_104;
/// `CancelRequest` code.
pub(crate) const CANCEL_REQUEST: u32 = 80_877_102;
/// Protocol 3.0.
pub(crate) const PROTOCOL_3_0: u32 = 196_608;
/// First byte of a TLS handshake record (direct TLS).
pub(crate) const TLS_HANDSHAKE: u8 = 0x16;
/// Largest message accepted from the upstream PostgreSQL (its own limit is
/// 1 GiB). Client messages have the smaller
/// [`Bounds::max_message_size`](crate::config::Bounds::max_message_size).
pub(crate) const MAX_MESSAGE_LEN: usize = 1 << 30;

/// A malformed or unexpected message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProtocolError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("invalid message length {0}")]
    BadLength(usize),
    #[error("malformed {0} message")]
    Malformed(&'static str),
    #[error("unexpected message type {0:?}")]
    Unexpected(char),
}

/// Reads a NUL-terminated string at the start of `buf`; returns it and the
/// rest after the NUL.
pub(crate) fn cstr(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = buf.iter().position(|&b| b == 0)?;
    Some((&buf[..nul], &buf[nul + 1..]))
}

/// Appends a message with `tag` whose body is written by `body`.
pub(crate) fn put_message(out: &mut Vec<u8>, tag: u8, body: impl FnOnce(&mut Vec<u8>)) {
    out.push(tag);
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out);
    let len = u32::try_from(out.len() - at).unwrap_or(u32::MAX);
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends a NUL-terminated string (any NUL inside is dropped).
pub(crate) fn put_cstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(s.iter().copied().filter(|&b| b != 0));
    out.push(0);
}

/// Appends `AuthenticationOk` (0), `AuthenticationCleartextPassword` (3), …
pub(crate) fn put_auth_request(out: &mut Vec<u8>, code: u32) {
    put_message(out, b'R', |out| out.extend_from_slice(&code.to_be_bytes()));
}

/// Appends a simple `Query`.
pub(crate) fn put_query(out: &mut Vec<u8>, sql: &str) {
    put_message(out, b'Q', |out| put_cstr(out, sql.as_bytes()));
}

/// Appends `ReadyForQuery`.
#[cfg(test)]
pub(crate) fn put_ready_for_query(out: &mut Vec<u8>, status: u8) {
    put_message(out, b'Z', |out| out.push(status));
}

/// Appends `NegotiateProtocolVersion`: newest supported minor version and the
/// protocol options not recognized.
pub(crate) fn put_negotiate_protocol_version(out: &mut Vec<u8>, minor: u32, unrecognized: &[&str]) {
    put_message(out, b'v', |out| {
        out.extend_from_slice(&minor.to_be_bytes());
        let n = u32::try_from(unrecognized.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        for option in unrecognized {
            put_cstr(out, option.as_bytes());
        }
    });
}
