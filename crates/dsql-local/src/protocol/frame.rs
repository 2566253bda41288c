//! Tagged messages: read one exactly, or split a stream into [`Frame`]s
//! inside one reusable buffer.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::budget::{FREE_PER_BUFFER, MemoryBudget};
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
///
/// The buffer grows only as bytes arrive (at most one [`READ_CHUNK`] ahead
/// of them, plus doubling): a header declaring a large length reserves
/// nothing, and a length over the reader's bound is an error as soon as the
/// header is in. Capacity past [`FREE_PER_BUFFER`] is charged to a
/// [`MemoryBudget`] before it is allocated; when the budget is spent,
/// [`fill`](Self::fill) fails with [`io::ErrorKind::OutOfMemory`].
#[derive(Debug)]
pub(crate) struct FrameReader {
    buf: Vec<u8>,
    pos: usize,
    /// Largest message length accepted (the length word, tag excluded).
    max_len: usize,
    budget: MemoryBudget,
    /// Bytes of `buf`'s capacity charged to `budget`.
    charged: usize,
}

impl FrameReader {
    /// A reader accepting messages up to PostgreSQL's 1 GiB (the upstream's),
    /// with no budget.
    pub(crate) fn new() -> Self {
        Self::with_max_len(MAX_MESSAGE_LEN)
    }

    /// A reader accepting messages of at most `max_len` bytes (length word
    /// and body), with no budget.
    pub(crate) fn with_max_len(max_len: usize) -> Self {
        Self::budgeted(max_len, MemoryBudget::unlimited())
    }

    /// A reader accepting messages of at most `max_len` bytes, its buffer
    /// charged to `budget`.
    pub(crate) fn budgeted(max_len: usize, budget: MemoryBudget) -> Self {
        Self {
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            max_len,
            budget,
            charged: 0,
        }
    }

    /// Charges this reader's buffer to `budget` from now on. Should the
    /// buffer already be over what `budget` has left, the next
    /// [`fill`](Self::fill) that grows it fails.
    pub(crate) fn charge_to(&mut self, budget: MemoryBudget) {
        self.budget.release(self.charged);
        self.charged = 0;
        self.budget = budget;
        let _over_budget = self.settle_charge();
    }

    /// Brings the charge in line with the buffer's capacity (which must
    /// already be allowed, or be shrinking).
    fn settle_charge(&mut self) -> io::Result<()> {
        let needed = self.buf.capacity().saturating_sub(FREE_PER_BUFFER);
        if needed > self.charged {
            self.budget.try_charge(needed - self.charged)?;
        } else {
            self.budget.release(self.charged - needed);
        }
        self.charged = needed;
        Ok(())
    }

    /// Makes room for one more read, charging the budget before allocating.
    fn reserve_chunk(&mut self) -> io::Result<()> {
        let len = self.buf.len();
        let capacity = self.buf.capacity();
        if capacity - len >= READ_CHUNK {
            return Ok(());
        }
        let target = (len + READ_CHUNK).max(capacity.saturating_mul(2));
        let needed = target.saturating_sub(FREE_PER_BUFFER);
        if needed > self.charged {
            self.budget.try_charge(needed - self.charged)?;
            self.charged = needed;
        }
        self.buf.reserve_exact(target - len);
        // `reserve_exact` may round up: charge what was really allocated.
        self.settle_charge()
    }

    /// The largest message length accepted.
    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }

    /// Reads more bytes; `Ok(0)` at end of stream.
    pub(crate) async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf.shrink_to(READ_CHUNK);
                self.settle_charge()?;
            }
        } else if self.pos > 0 && self.buf.capacity() - self.buf.len() < READ_CHUNK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.reserve_chunk()?;
        r.read_buf(&mut self.buf).await
    }

    /// The next complete message, if the buffer holds one.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        let avail = &self.buf[self.pos..];
        if avail.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([avail[1], avail[2], avail[3], avail[4]]) as usize;
        if !(4..=self.max_len).contains(&len) {
            // Over the bound: refused as soon as the header is in.
            return Err(ProtocolError::BadLength(len));
        }
        let total = 1 + len;
        if avail.len() < total {
            // Never reserve the declared length: `fill` grows the buffer as
            // bytes actually arrive.
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

    /// Bytes of the buffer charged to the budget.
    #[cfg(test)]
    pub(crate) fn charged(&self) -> usize {
        self.charged
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

    /// The buffer's capacity.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether bytes of an incomplete message are buffered.
    #[cfg(test)]
    pub(crate) fn has_partial(&self) -> bool {
        self.pos < self.buf.len()
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        self.budget.release(self.charged);
    }
}
