//! [`Outbox`]: what one side of the relay writes after a read, without
//! copying large messages.
//!
//! Small messages (and the relay's own) are gathered into one buffer, so a
//! read costs one write. A large message stays where it was read, in the
//! [`FrameReader`]'s buffer, which is charged to the memory budget and not
//! refilled before the write: copying it would hold it twice, and keep a
//! buffer that large, uncharged, for the rest of the session.

use std::io;
use std::ops::{Deref, DerefMut};

use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::protocol::{Frame, FrameReader};

/// Messages at least this large are written from the reader's buffer.
const DIRECT: usize = 64 * 1024;
/// The gathering buffer's usual size; it is shrunk back after a burst.
const CAPACITY: usize = 16 * 1024;

/// Bytes to write, in order: the buffer, with reader frames spliced in.
#[derive(Debug)]
pub(super) struct Outbox {
    bytes: Vec<u8>,
    /// Frames to write from the reader, each before `bytes[at..]`.
    direct: Vec<(usize, Frame)>,
    direct_len: usize,
}

impl Outbox {
    pub(super) fn new() -> Self {
        Self {
            bytes: Vec::with_capacity(CAPACITY),
            direct: Vec::new(),
            direct_len: 0,
        }
    }

    /// Queues a message read by `reader`.
    pub(super) fn frame(&mut self, reader: &FrameReader, frame: &Frame) {
        let bytes = reader.bytes(frame);
        if bytes.len() >= DIRECT {
            self.direct.push((self.bytes.len(), *frame));
            self.direct_len += bytes.len();
        } else {
            self.bytes.extend_from_slice(bytes);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.direct.is_empty()
    }

    /// Bytes queued.
    pub(super) fn len(&self) -> usize {
        self.bytes.len() + self.direct_len
    }

    /// Writes everything queued; `reader` must not have been filled since
    /// its frames were queued.
    pub(super) async fn write_to<W: AsyncWrite + Unpin>(
        &self,
        reader: &FrameReader,
        out: &mut W,
    ) -> io::Result<()> {
        let mut at = 0;
        for (before, frame) in &self.direct {
            out.write_all(&self.bytes[at..*before]).await?;
            out.write_all(reader.bytes(frame)).await?;
            at = *before;
        }
        out.write_all(&self.bytes[at..]).await
    }

    /// Empties the outbox, giving back what a burst made it grow to.
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.direct.clear();
        self.direct_len = 0;
        if self.bytes.capacity() > 4 * CAPACITY {
            self.bytes.shrink_to(CAPACITY);
        }
    }
}

/// The gathering buffer, for messages the relay writes itself.
impl Deref for Outbox {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.bytes
    }
}

impl DerefMut for Outbox {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}
