//! Tagged messages: read one exactly, or split a stream into [`Frame`]s
//! inside one reusable buffer.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{MAX_MESSAGE_LEN, ProtocolError};

/// Read granularity of [`FrameReader`].
const READ_CHUNK: usize = 16 * 1024;
/// Buffers larger than this are shrunk once empty.
const KEEP_CAPACITY: usize = 1 << 20;

/// Reads one tagged message of at most `max_len` bytes, exactly; returns its
/// tag and body.
pub(crate) async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
    max_len: usize,
) -> Result<(u8, Vec<u8>), ProtocolError> {
    let tag = r.read_u8().await?;
    let len = r.read_u32().await? as usize;
    if len < 4 || len > max_len {
        return Err(ProtocolError::BadLength(len));
    }
    let mut body = vec![0; len - 4];
    r.read_exact(&mut body).await?;
    Ok((tag, body))
}

/// A complete message inside a [`FrameReader`]'s buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    pub(crate) tag: u8,
    start: usize,
    end: usize,
}

/// Splits a byte stream into tagged messages, reusing one buffer.
///
/// [`fill`](Self::fill) is cancel-safe: bytes read stay in the buffer.
#[derive(Debug)]
pub(crate) struct FrameReader {
    buf: Vec<u8>,
    pos: usize,
}

impl FrameReader {
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
        }
    }

    /// Reads more bytes; `Ok(0)` at end of stream.
    pub(crate) async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf.shrink_to(READ_CHUNK);
            }
        } else if self.pos > 0 && self.buf.capacity() - self.buf.len() < READ_CHUNK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        r.read_buf(&mut self.buf).await
    }

    /// The next complete message, if the buffer holds one.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        let avail = &self.buf[self.pos..];
        if avail.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([avail[1], avail[2], avail[3], avail[4]]) as usize;
        if !(4..=MAX_MESSAGE_LEN).contains(&len) {
            return Err(ProtocolError::BadLength(len));
        }
        let total = 1 + len;
        if avail.len() < total {
            let missing = total - avail.len();
            self.buf.reserve(missing);
            return Ok(None);
        }
        let frame = Frame {
            tag: avail[0],
            start: self.pos,
            end: self.pos + total,
        };
        self.pos += total;
        Ok(Some(frame))
    }

    /// The whole message (tag, length and body).
    pub(crate) fn bytes(&self, frame: &Frame) -> &[u8] {
        &self.buf[frame.start..frame.end]
    }

    /// The message body.
    pub(crate) fn body(&self, frame: &Frame) -> &[u8] {
        &self.buf[frame.start + 5..frame.end]
    }

    /// Appends bytes as if they had been read.
    #[cfg(test)]
    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Whether bytes of an incomplete message are buffered.
    #[cfg(test)]
    pub(crate) fn has_partial(&self) -> bool {
        self.pos < self.buf.len()
    }
}
