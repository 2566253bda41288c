//! Property-based fuzzing of the startup parser and of message framing.
//!
//! Runs in CI with proptest's bounded case count (256 per property, about
//! 5 s for all in a debug build). For a longer run (3 000 cases take about
//! 90 s in a debug build; use `--release` for more):
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release -p dsql-local --lib protocol::fuzz_tests
//! ```
//!
//! Properties:
//! - [`read_startup`], [`read_message`] and [`FrameReader`] never panic, on
//!   random, truncated, oversized or negative lengths;
//! - a well-formed packet or sequence of frames, split at any read
//!   boundaries, yields exactly what was encoded, and nothing after a startup
//!   packet is consumed;
//! - malformed input yields a typed error (or end of stream), never an
//!   endless loop;
//! - the frame buffer's capacity, observed through the spare room each read
//!   is offered (`FrameReader`'s buffer is private to `frame.rs`), stays
//!   within 2 × bytes fed + 4 read chunks (64 KiB), even after a header
//!   declaring 1 GiB; for well-formed streams, within 2 × (bytes fed + the
//!   largest frame) + 2 read chunks.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use proptest::collection::vec;
use proptest::prelude::*;
use tokio::io::{AsyncRead, ReadBuf};

use super::*;

/// Size of a [`FrameReader`] read (`READ_CHUNK` in `frame.rs`).
const READ_CHUNK: usize = 16 * 1024;

/// Runs a future over in-memory readers, which are always ready.
fn now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("an in-memory read is never pending"),
    }
}

/// Returns `data` in reads of the given sizes (then the rest at once), and
/// records the largest spare room a read was offered.
struct Chunked {
    data: Vec<u8>,
    at: usize,
    cuts: Vec<usize>,
    reads: usize,
    max_room: usize,
}

impl Chunked {
    fn new(data: Vec<u8>, cuts: Vec<usize>) -> Self {
        Self {
            data,
            at: 0,
            cuts,
            reads: 0,
            max_room: 0,
        }
    }
}

impl AsyncRead for Chunked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.max_room = this.max_room.max(buf.remaining());
        let want = this.cuts.get(this.reads).copied().unwrap_or(usize::MAX).max(1);
        this.reads += 1;
        let n = want.min(buf.remaining()).min(this.data.len() - this.at);
        buf.put_slice(&this.data[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

fn encode(frames: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut wire = Vec::new();
    for (tag, body) in frames {
        put_message(&mut wire, *tag, |out| out.extend_from_slice(body));
    }
    wire
}

/// What reading `wire` in reads of `cuts` bytes gave.
struct Drained {
    frames: Vec<(u8, Vec<u8>)>,
    error: Option<ProtocolError>,
    partial: bool,
    fed: usize,
    max_room: usize,
}

/// Feeds `wire` to a [`FrameReader`] and takes every frame, as the relay
/// does, until end of stream or an error; panics if that does not end.
fn drain(wire: Vec<u8>, cuts: Vec<usize>) -> Drained {
    let len = wire.len();
    let mut src = Chunked::new(wire, cuts);
    let mut reader = FrameReader::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    // Every fill but the last reads at least one byte; every frame takes at
    // least 5.
    for _ in 0..=len + 1 {
        let n = now(reader.fill(&mut src)).expect("in-memory read");
        fed += n;
        for _ in 0..=len / 5 + 1 {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    frames.push((frame.tag, reader.body(&frame).to_vec()));
                    assert_eq!(reader.bytes(&frame).len(), reader.body(&frame).len() + 5);
                }
                Ok(None) => break,
                Err(error) => {
                    return Drained {
                        frames,
                        error: Some(error),
                        partial: true,
                        fed,
                        max_room: src.max_room,
                    };
                }
            }
        }
        if n == 0 {
            return Drained {
                frames,
                error: None,
                partial: reader.has_partial(),
                fed,
                max_room: src.max_room,
            };
        }
    }
    panic!("no end of stream after {len} bytes");
}

fn frames() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    let body = prop_oneof![
        8 => vec(any::<u8>(), 0..64),
        2 => vec(any::<u8>(), 0..2048),
        1 => vec(any::<u8>(), 16_000..40_000),
    ];
    vec((any::<u8>(), body), 0..12)
}

/// Read sizes: tiny, around a header, around a read chunk.
fn cuts() -> impl Strategy<Value = Vec<usize>> {
    vec(prop_oneof![1..8_usize, 1..600_usize, 1..40_000_usize], 0..64)
}

/// A length field: zero, below the minimum, negative, huge, at the limit, or any.
fn length_field() -> impl Strategy<Value = u32> {
    prop_oneof![
        0..4_u32,
        (i32::MIN..0).prop_map(|n| n as u32),
        Just(MAX_MESSAGE_LEN as u32),
        Just(MAX_MESSAGE_LEN as u32 + 1),
        Just(u32::MAX),
        4..64_u32,
        any::<u32>(),
    ]
}

/// Input that is mostly frames, with some headers replaced by odd lengths and
/// random bytes mixed in.
fn near_frames() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![
            4 => (any::<u8>(), vec(any::<u8>(), 0..64)).prop_map(|f| encode(&[f])),
            1 => (any::<u8>(), length_field(), vec(any::<u8>(), 0..64)).prop_map(|(tag, len, rest)| {
                let mut out = vec![tag];
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&rest);
                out
            }),
            1 => vec(any::<u8>(), 0..16),
        ],
        0..16,
    )
    .prop_map(|parts| parts.concat())
}

/// The bound on the buffer's capacity: twice what was fed and what a
/// declared (true) frame length justifies, plus two read chunks.
fn assert_room_bounded(d: &Drained, largest_frame: usize) {
    let bound = 2 * (d.fed + largest_frame) + 2 * READ_CHUNK;
    assert!(
        d.fed + d.max_room <= bound,
        "capacity up to {} after {} bytes fed (largest frame {largest_frame})",
        d.fed + d.max_room,
        d.fed
    );
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn frames_survive_any_split(frames in frames(), cuts in cuts()) {
        let wire = encode(&frames);
        let largest = frames.iter().map(|(_, b)| b.len() + 5).max().unwrap_or(0);
        let d = drain(wire, cuts);
        prop_assert!(d.error.is_none(), "{:?}", d.error);
        prop_assert!(!d.partial);
        prop_assert_eq!(&d.frames, &frames);
        assert_room_bounded(&d, largest);
    }

    #[test]
    fn truncated_frames_stay_partial(frames in frames(), cut in any::<prop::sample::Index>(), cuts in cuts()) {
        let wire = encode(&frames);
        // No frames, nothing to cut (an assumption would be rejected so
        // often that long runs abort on proptest's global reject limit).
        if wire.is_empty() {
            return Ok(());
        }
        let end = cut.index(wire.len());
        let d = drain(wire[..end].to_vec(), cuts);
        prop_assert!(d.error.is_none(), "{:?}", d.error);
        // The complete frames before the cut come out, in order.
        prop_assert!(frames.starts_with(&d.frames));
        let complete: usize = d.frames.iter().map(|(_, b)| b.len() + 5).sum();
        prop_assert_eq!(d.partial, complete < end);
    }

    #[test]
    fn random_bytes_end_in_frames_an_error_or_eof(wire in vec(any::<u8>(), 0..4096), cuts in cuts()) {
        let d = drain(wire, cuts);
        if let Some(error) = &d.error {
            prop_assert!(matches!(error, ProtocolError::BadLength(len) if !(4..=MAX_MESSAGE_LEN).contains(len)));
        }
    }

    #[test]
    fn odd_lengths_are_typed_errors(frames in frames(), tag in any::<u8>(), len in length_field(), cuts in cuts()) {
        let mut wire = encode(&frames);
        wire.push(tag);
        wire.extend_from_slice(&len.to_be_bytes());
        let d = drain(wire, cuts);
        let len = len as usize;
        if (4..=MAX_MESSAGE_LEN).contains(&len) {
            // A valid length: an empty message, or one still incomplete.
            let mut expected = frames.clone();
            if len == 4 {
                expected.push((tag, Vec::new()));
            }
            prop_assert!(d.error.is_none());
            prop_assert_eq!(&d.frames, &expected);
            prop_assert_eq!(d.partial, len > 4);
        } else {
            prop_assert_eq!(&d.frames, &frames);
            prop_assert!(matches!(d.error, Some(ProtocolError::BadLength(n)) if n == len), "{:?}", d.error);
        }
    }

    #[test]
    fn near_frames_never_panic_or_loop(wire in near_frames(), cuts in cuts()) {
        drain(wire, cuts);
    }

    #[test]
    fn read_message_is_exact_or_an_error(wire in near_frames(), max_len in prop_oneof![Just(1024_usize), 0..64_usize, Just(MAX_MESSAGE_LEN)]) {
        let mut r = &wire[..];
        match now(read_message(&mut r, max_len)) {
            Ok((tag, body)) => {
                prop_assert!(body.len() + 4 <= max_len);
                prop_assert_eq!(tag, wire[0]);
                prop_assert_eq!(&wire[5..5 + body.len()], &body[..]);
                prop_assert_eq!(r.len(), wire.len() - 5 - body.len());
            }
            Err(ProtocolError::BadLength(len)) => prop_assert!(!(4..=max_len).contains(&len)),
            Err(ProtocolError::Io(e)) => prop_assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

/// Startup packets: a length, then a code and a body.
fn startup_like() -> impl Strategy<Value = Vec<u8>> {
    let code = prop_oneof![
        Just(SSL_REQUEST),
        Just(GSSENC_REQUEST),
        Just(CANCEL_REQUEST),
        Just(PROTOCOL_3_0),
        (0..=u16::MAX as u32).prop_map(|minor| (3 << 16) | minor),
        any::<u32>(),
    ];
    let rest = prop_oneof![
        Just(Vec::new()),
        vec(any::<u8>(), 8..=8),
        vec(prop_oneof![Just(0_u8), any::<u8>(), b'a'..=b'z'], 0..128),
        vec(any::<u8>(), 0..11_000),
    ];
    let len = prop_oneof![
        2 => Just(None),
        1 => length_field().prop_map(Some),
        1 => (9_990..10_010_u32).prop_map(Some),
    ];
    (len, code, rest).prop_map(|(len, code, rest)| {
        let len = len.unwrap_or(u32::try_from(8 + rest.len()).unwrap_or(u32::MAX));
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(&code.to_be_bytes());
        out.extend_from_slice(&rest);
        out
    })
}

fn param_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,16}",
        "\\PC{1,8}".prop_filter("no NUL", |s| !s.contains('\0'))
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn startup_never_panics_on_random_bytes(wire in vec(any::<u8>(), 0..256)) {
        let _ = now(read_startup(&mut &wire[..]));
    }

    #[test]
    fn startup_like_packets_parse_exactly_or_fail(wire in startup_like(), trailing in vec(any::<u8>(), 0..8)) {
        let declared = u32::from_be_bytes([wire[0], wire[1], wire[2], wire[3]]) as usize;
        let code = u32::from_be_bytes([wire[4], wire[5], wire[6], wire[7]]);
        let mut input = wire.clone();
        input.extend_from_slice(&trailing);
        let mut r = &input[..];
        let result = now(read_startup(&mut r));
        if !(8..=10_000).contains(&declared) {
            prop_assert!(matches!(result, Err(ProtocolError::BadLength(n)) if n == declared), "{result:?}");
            return Ok(());
        }
        if declared > input.len() {
            prop_assert!(matches!(&result, Err(ProtocolError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof), "{result:?}");
            return Ok(());
        }
        // Nothing after the packet is consumed, whatever the outcome.
        prop_assert_eq!(r.len(), input.len() - declared);
        let rest_len = declared - 8;
        match result {
            Ok(StartupPacket::Ssl) => prop_assert!(code == SSL_REQUEST && rest_len == 0),
            Ok(StartupPacket::GssEnc) => prop_assert!(code == GSSENC_REQUEST && rest_len == 0),
            Ok(StartupPacket::Cancel { .. }) => prop_assert!(code == CANCEL_REQUEST && rest_len == 8),
            Ok(StartupPacket::Startup(msg)) => {
                prop_assert_eq!(msg.version, code);
                prop_assert_eq!(code >> 16, 3);
                prop_assert!(msg.params.iter().all(|(n, _)| !n.is_empty()));
            }
            Err(ProtocolError::Malformed(what)) => prop_assert_eq!(what, "startup"),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn startup_messages_round_trip(
        params in vec((param_name(), "\\PC{0,32}".prop_filter("no NUL", |s| !s.contains('\0'))), 0..16),
        trailing in vec(any::<u8>(), 0..8),
    ) {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let mut wire = startup_message(pairs);
        let len = wire.len();
        wire.extend_from_slice(&trailing);
        let mut r = &wire[..];
        let Ok(StartupPacket::Startup(msg)) = now(read_startup(&mut r)) else {
            return Err(TestCaseError::fail("not a startup message"));
        };
        prop_assert_eq!(msg.version, PROTOCOL_3_0);
        prop_assert_eq!(&msg.params, &params);
        prop_assert_eq!(r, &trailing[..]);
        // Truncated anywhere, it is an unexpected end of stream.
        for cut in [0, 1, 3, 4, 7, 8, len / 2, len - 1] {
            let result = now(read_startup(&mut &wire[..cut.min(len - 1)]));
            prop_assert!(matches!(&result, Err(ProtocolError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof), "{result:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Headers declaring large (valid or not) lengths reserve nothing: the
    /// buffer grows only with the bytes that arrive.
    #[test]
    fn capacity_is_bounded_by_bytes_fed(
        wire in near_frames(),
        tag in any::<u8>(),
        len in prop_oneof![Just(MAX_MESSAGE_LEN as u32), (1_u32 << 16)..(1 << 30), length_field()],
        tail in vec(any::<u8>(), 0..4096),
        cuts in cuts(),
    ) {
        let mut wire = wire;
        wire.push(tag);
        wire.extend_from_slice(&len.to_be_bytes());
        wire.extend_from_slice(&tail);
        let d = drain(wire, cuts);
        prop_assert!(
            d.fed + d.max_room <= 2 * d.fed + 4 * READ_CHUNK,
            "capacity up to {} after {} bytes fed",
            d.fed + d.max_room,
            d.fed
        );
    }
}

/// A 5-byte header declaring 1 GiB does not make the buffer reserve it.
#[test]
fn huge_declared_length_reserves_nothing() {
    let mut wire = vec![b'd'];
    wire.extend_from_slice(&u32::try_from(MAX_MESSAGE_LEN).expect("fits").to_be_bytes());
    let d = drain(wire, Vec::new());
    assert!(d.error.is_none());
    assert!(d.partial);
    assert!(
        d.max_room <= 2 * d.fed + 4 * READ_CHUNK,
        "{} bytes of room after {} bytes fed",
        d.max_room,
        d.fed
    );
}
