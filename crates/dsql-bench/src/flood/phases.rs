//! The flood's phases: what each sends, and how the server ended each
//! connection.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::wire::{self, Ending, Target, Tls};
use super::{FloodArgs, Settings};
use crate::BoxError;

/// How long the flood waits, after its last byte, for the server to end a
/// connection before counting it as held.
const SETTLE: Duration = Duration::from_secs(2);
/// Connections opened at once in phase C (the listen backlog is 1,024).
const OPENING: usize = 128;

/// Phase A: each session sends a header declaring `oversized_length`, then
/// `oversized_bytes` of body.
pub(super) async fn oversized(
    target: &Arc<Target>,
    args: &FloodArgs,
) -> Result<BTreeMap<String, u64>, BoxError> {
    let mut frame = vec![b'Q'];
    frame.extend_from_slice(&args.oversized_length.to_be_bytes());
    frame.resize(5 + args.oversized_bytes, b' ');
    let frame = Arc::new(frame);
    let endings = run_limited(args.oversized, args.concurrency, |_| {
        let (target, frame) = (Arc::clone(target), Arc::clone(&frame));
        async move {
            match target.session().await {
                Ok(tls) => wire::send_and_watch(tls, &frame, frame.len(), SETTLE).await.0,
                Err(ending) => ending,
            }
        }
    })
    .await?;
    Ok(count(endings))
}

/// Phase B: every session opened first, then all their partial messages
/// sent together, so that they compete for the budget. Returns the held
/// sessions, to be kept open through phase C.
pub(super) async fn partial_messages(
    target: &Arc<Target>,
    args: &FloodArgs,
    settings: &Settings,
) -> Result<(BTreeMap<String, u64>, Vec<Tls>), BoxError> {
    let declared = u32::try_from(settings.max_message_size)?;
    // The body needs `declared - 4` bytes: one fewer keeps it incomplete.
    let body = args.partial_bytes.min(declared as usize - 5);
    let mut frame = vec![b'Q'];
    frame.extend_from_slice(&declared.to_be_bytes());
    frame.resize(5 + body, b' ');
    let frame = Arc::new(frame);
    let opened = run_limited(args.partial, args.concurrency, |_| {
        let target = Arc::clone(target);
        async move { target.session().await }
    })
    .await?;
    let mut endings = Vec::new();
    let mut sending = JoinSet::new();
    for session in opened {
        match session {
            Ok(tls) => {
                let frame = Arc::clone(&frame);
                sending.spawn(async move { wire::send_and_watch(tls, &frame, 64 * 1024, SETTLE).await });
            }
            Err(ending) => endings.push(ending),
        }
    }
    let mut held = Vec::new();
    while let Some(sent) = sending.join_next().await {
        let (ending, session) = sent?;
        if ending != Ending::Held {
            endings.push(ending);
        }
        held.extend(session);
    }
    // A busy server may still be reading bytes sent before the settling
    // time: those it ends afterwards are counted by how it ended them.
    tokio::time::sleep(SETTLE).await;
    let (late, held) = recheck(held).await;
    endings.extend(late);
    endings.extend(held.iter().map(|_| Ending::Held));
    Ok((count(endings), held))
}

/// What a phase-C connection does once connected.
#[derive(Clone, Copy, Debug)]
enum HalfOpen {
    Silent,
    TlsStalled,
    PartialStartup,
}

impl HalfOpen {
    fn name(self) -> &'static str {
        match self {
            Self::Silent => "silent",
            Self::TlsStalled => "stalled TLS",
            Self::PartialStartup => "half a startup packet",
        }
    }
}

/// Phase C: the half-open connections, interleaved so that each kind gets
/// its share of the handshake slots; after a second, which ones the server
/// closed at once. Returns the held ones, to be closed by the caller after
/// the reading.
pub(super) async fn half_open_handshakes(
    target: &Arc<Target>,
    args: &FloodArgs,
    settings: &Settings,
) -> Result<(BTreeMap<String, u64>, Vec<TcpStream>), BoxError> {
    let hello = Arc::new(target.client_hello()?);
    let startup = Arc::new(half_startup_packet(settings.max_startup_packet));
    let mut order: Vec<(f64, HalfOpen)> = Vec::new();
    for (kind, n) in [
        (HalfOpen::Silent, args.silent),
        (HalfOpen::TlsStalled, args.tls_stalled),
        (HalfOpen::PartialStartup, args.partial_startup),
    ] {
        order.extend((0..n).map(|i| ((i as f64 + 0.5) / n as f64, kind)));
    }
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let kinds: Arc<Vec<HalfOpen>> = Arc::new(order.into_iter().map(|(_, kind)| kind).collect());
    let started = Instant::now();
    let opened = run_limited(kinds.len(), OPENING, |i| {
        let (target, kinds, hello, startup) = (
            Arc::clone(target),
            Arc::clone(&kinds),
            Arc::clone(&hello),
            Arc::clone(&startup),
        );
        async move {
            let kind = kinds[i];
            (kind, open_half(&target, kind, &hello, &startup).await)
        }
    })
    .await?;
    // Let the server accept every connection and close those over the cap.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut labels = Vec::new();
    let mut checks = JoinSet::new();
    for (kind, opened) in opened {
        match opened {
            Ok(mut tcp) => {
                checks.spawn(async move {
                    let open = wire::still_open(&mut tcp, Duration::from_millis(300)).await;
                    (kind, open.then_some(tcp))
                });
            }
            Err(how) => labels.push(format!("{}: {how}", kind.name())),
        }
    }
    let mut held = Vec::new();
    while let Some(checked) = checks.join_next().await {
        match checked? {
            (kind, Some(tcp)) => {
                labels.push(format!("{}: held", kind.name()));
                held.push(tcp);
            }
            (kind, None) => labels.push(format!("{}: closed at once", kind.name())),
        }
    }
    let hold = Duration::from_secs_f64(args.hold);
    tokio::time::sleep(hold.saturating_sub(started.elapsed())).await;
    let mut endings = BTreeMap::new();
    for label in labels {
        *endings.entry(label).or_insert(0) += 1;
    }
    Ok((endings, held))
}

/// Connects and does what `kind` does; `Err` says how it failed (a server
/// that closes before the `SSLRequest` is answered closed it at once).
async fn open_half(
    target: &Target,
    kind: HalfOpen,
    hello: &[u8],
    startup: &[u8],
) -> Result<TcpStream, &'static str> {
    let mut tcp = target.tcp().await.map_err(|_| "connect failed")?;
    match kind {
        HalfOpen::Silent => {}
        HalfOpen::TlsStalled => {
            match Target::ssl_request(&mut tcp).await {
                Ok(true) => {}
                _ => return Err("closed at once"),
            }
            tcp.write_all(hello).await.map_err(|_| "closed at once")?;
        }
        HalfOpen::PartialStartup => tcp.write_all(startup).await.map_err(|_| "closed at once")?,
    }
    Ok(tcp)
}

/// The first half of a startup packet declaring the largest length allowed:
/// the server allocates the declared length and waits for the rest.
fn half_startup_packet(max_startup_packet: u64) -> Vec<u8> {
    let len = u32::try_from(max_startup_packet).unwrap_or(10_000);
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&(3_u32 << 16).to_be_bytes());
    out.extend_from_slice(b"user\0admin\0application_name\0");
    out.resize((len as usize / 2).max(out.len()), b'x');
    out
}

/// Which of `held` the server has ended since (and how), and the ones
/// still open.
pub(super) async fn recheck(held: Vec<Tls>) -> (Vec<Ending>, Vec<Tls>) {
    let mut ended = Vec::new();
    let mut open = Vec::new();
    for mut session in held {
        match wire::ending(&mut session, Duration::from_millis(10)).await {
            Ending::Held => open.push(session),
            ending => ended.push(ending),
        }
    }
    (ended, open)
}

/// Phase D (not run by default): sessions each send one complete `Query`
/// of `complete_bytes` (`SELECT 1` and a long comment), one at a time so
/// that each fits in the budget, read the answer and stay open. What they
/// keep once their message is relayed is what the reading shows.
pub(super) async fn complete_messages(
    target: &Arc<Target>,
    args: &FloodArgs,
    settings: &Settings,
) -> Result<(BTreeMap<String, u64>, Vec<Tls>), BoxError> {
    // The wire length (body + 4) may be `max_message_size` at most.
    let body = args.complete_bytes.min(settings.max_message_size as usize - 4);
    let mut sql = b"SELECT 1 -- ".to_vec();
    sql.resize(body.saturating_sub(1).max(sql.len()), b'x');
    sql.push(0);
    answered_and_held(target, args.complete, Arc::new(wire::message(b'Q', &sql))).await
}

/// Phase E (not run by default): sessions each run `SELECT repeat('x',
/// result_bytes)`, one at a time, read the whole result and stay open.
pub(super) async fn large_results(
    target: &Arc<Target>,
    args: &FloodArgs,
) -> Result<(BTreeMap<String, u64>, Vec<Tls>), BoxError> {
    let sql = format!("SELECT repeat('x', {})\0", args.result_bytes);
    answered_and_held(
        target,
        args.large_results,
        Arc::new(wire::message(b'Q', sql.as_bytes())),
    )
    .await
}

/// `n` sessions, one after the other, each sending `frame` and reading the
/// answer; the answered ones are returned open.
async fn answered_and_held(
    target: &Arc<Target>,
    n: usize,
    frame: Arc<Vec<u8>>,
) -> Result<(BTreeMap<String, u64>, Vec<Tls>), BoxError> {
    let results = run_limited(n, 1, |_| {
        let (target, frame) = (Arc::clone(target), Arc::clone(&frame));
        async move {
            match target.session().await {
                Err(ending) => (ending, None),
                Ok(mut tls) => match wire::query(&mut tls, &frame).await {
                    Ok(()) => (Ending::Answered, Some(tls)),
                    Err(ending) => (ending, None),
                },
            }
        }
    })
    .await?;
    let mut endings = Vec::new();
    let mut held = Vec::new();
    for (ending, session) in results {
        endings.push(ending);
        held.extend(session);
    }
    Ok((count(endings), held))
}

/// `n` tasks, at most `concurrency` at once; their results in completion
/// order.
async fn run_limited<T, F, Fut>(n: usize, concurrency: usize, mut task: F) -> Result<Vec<T>, BoxError>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut running = JoinSet::new();
    let mut results = Vec::with_capacity(n);
    let mut next = 0;
    while next < n || !running.is_empty() {
        while next < n && running.len() < concurrency.max(1) {
            running.spawn(task(next));
            next += 1;
        }
        if let Some(done) = running.join_next().await {
            results.push(done?);
        }
    }
    Ok(results)
}

pub(super) fn count(endings: impl IntoIterator<Item = Ending>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for ending in endings {
        *counts.entry(ending.to_string()).or_insert(0) += 1;
    }
    counts
}
