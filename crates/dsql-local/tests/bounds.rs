//! Bounds on what a client can make `dsql-local` hold: declared message
//! lengths reserve nothing and oversized ones end the session, startup
//! packets are limited to PostgreSQL's 10,000 bytes, and connections in
//! their handshake are capped (cancel requests included).

use std::time::Duration;

use dsql_local::{DsqlLocal, LocalConfig, RefusalReason, catalog};
use dsql_testkit::local::{connect, start, token};
use dsql_testkit::{eventually, tls};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// The process's peak resident set (`VmHWM`), in bytes: `dsql-local` runs in
/// this process.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn cstr(text: &str) -> Vec<u8> {
    let mut out = text.as_bytes().to_vec();
    out.push(0);
    out
}

fn message(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&u32::try_from(body.len() + 4).expect("small").to_be_bytes());
    out.extend_from_slice(body);
}

/// Reads one message, or `None` at end of stream (or a reset).
async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> Option<(u8, Vec<u8>)> {
    let tag = r.read_u8().await.ok()?;
    let len = r.read_u32().await.ok()?;
    let mut body = vec![0; len.checked_sub(4)? as usize];
    r.read_exact(&mut body).await.ok()?;
    Some((tag, body))
}

fn field(body: &[u8], kind: u8) -> Option<String> {
    let mut fields = body;
    while let Some((&k, rest)) = fields.split_first() {
        let end = rest.iter().position(|&b| b == 0)?;
        if k == kind {
            return Some(String::from_utf8_lossy(&rest[..end]).into_owned());
        }
        fields = &rest[end + 1..];
    }
    None
}

/// Whether the server closes `r` within `within`: what it sends first is
/// read and returned (an error, say), then end of stream is expected.
async fn closed_within<R: AsyncRead + Unpin>(r: &mut R, within: Duration) -> (bool, Vec<u8>) {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0_u8; 4096];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    let closed = timeout(within, read).await.is_ok();
    (closed, got)
}

/// An authenticated raw session as `admin`, up to the first `ReadyForQuery`.
async fn raw_session(local: &DsqlLocal) -> tokio_rustls::client::TlsStream<TcpStream> {
    let token = token(local, "admin").await;
    let mut tls = tls::raw_stream(local).await;
    let mut body = (3_u32 << 16).to_be_bytes().to_vec();
    for f in ["user", "admin", "database", "postgres", ""] {
        body.extend_from_slice(&cstr(f));
    }
    let mut startup = u32::try_from(body.len() + 4)
        .expect("small")
        .to_be_bytes()
        .to_vec();
    startup.extend_from_slice(&body);
    tls.write_all(&startup).await.expect("startup");
    let (tag, _) = read_message(&mut tls).await.expect("auth request");
    assert_eq!(tag, b'R');
    let mut password = Vec::new();
    message(&mut password, b'p', &cstr(&token));
    tls.write_all(&password).await.expect("password");
    loop {
        let (tag, body) = timeout(Duration::from_secs(10), read_message(&mut tls))
            .await
            .expect("greeting within 10 s")
            .expect("greeting");
        assert_ne!(tag, b'E', "{:?}", field(&body, b'M'));
        if tag == b'Z' {
            return tls;
        }
    }
}

#[tokio::test]
async fn a_query_declaring_1_gib_ends_the_session_without_reserving_it() {
    let local = start(DsqlLocal::builder()).await;
    let mut session = raw_session(&local).await;
    let before = peak_rss();
    // `Query`, length 1 GiB, and then nothing.
    session.write_all(&[b'Q', 0x40, 0, 0, 0]).await.expect("header");
    session.flush().await.expect("flush");
    let sent = Instant::now();
    let (closed, got) = closed_within(&mut session, Duration::from_secs(1)).await;
    assert!(closed, "the session is still open after {:?}", sent.elapsed());
    // The client is told why before the close.
    let (tag, body) = read_message(&mut &got[..])
        .await
        .expect("an error before the close");
    assert_eq!(tag, b'E');
    assert_eq!(field(&body, b'S').as_deref(), Some("FATAL"));
    assert_eq!(
        field(&body, b'C').as_deref(),
        Some(dsql_local::catalog::MESSAGE_TOO_LARGE.code)
    );
    if let (Some(before), Some(after)) = (before, peak_rss()) {
        assert!(
            after.saturating_sub(before) < 64 << 20,
            "peak RSS grew by {} bytes",
            after - before
        );
    }
    // The server is fine.
    let client = connect(&local, "admin").await.expect("connects");
    client.simple_query("SELECT 1").await.expect("query");
    local.shutdown().await;
}

#[tokio::test]
async fn a_declared_length_within_the_bound_reserves_nothing_until_bytes_arrive() {
    let local = start(DsqlLocal::builder()).await;
    let mut session = raw_session(&local).await;
    let before = peak_rss();
    // `Query` declaring 60 MiB (under the 64 MiB default), 1 byte of body.
    let len = 60_u32 << 20;
    let mut header = vec![b'Q'];
    header.extend_from_slice(&len.to_be_bytes());
    header.push(b'S');
    session.write_all(&header).await.expect("header");
    session.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let (Some(before), Some(after)) = (before, peak_rss()) {
        assert!(
            after.saturating_sub(before) < 16 << 20,
            "peak RSS grew by {} bytes for 6 bytes sent",
            after - before
        );
    }
    drop(session);
    local.shutdown().await;
}

/// Each session's buffer is bounded by the largest message, and all of them
/// together by one budget: sessions holding large partial messages at once
/// cannot exhaust the machine; the one that would go over is told `53200`
/// and ends, the others carry on.
#[tokio::test]
async fn large_messages_in_many_sessions_share_one_memory_budget() {
    let local = start(
        DsqlLocal::builder()
            .max_message_size(2 << 20)
            .max_buffered_bytes(5 << 20),
    )
    .await;
    // `Query` declaring 1.9 MiB, then 1.5 MiB of its body: each session's
    // buffer grows (by doubling) to 2 MiB, of which 64 KiB are free of
    // charge; two fit in the 5 MiB budget, a third does not.
    let len = 1_900_000_u32;
    let mut partial = vec![b'Q'];
    partial.extend_from_slice(&len.to_be_bytes());
    partial.resize(5 + (3 << 19), b' ');
    let mut sessions = Vec::new();
    let mut refused = None;
    for _ in 0..4 {
        let mut session = raw_session(&local).await;
        session.write_all(&partial).await.expect("partial message");
        session.flush().await.expect("flush");
        let (closed, got) = closed_within(&mut session, Duration::from_millis(500)).await;
        if closed {
            refused = Some(got);
            break;
        }
        sessions.push(session);
    }
    let got = refused.expect("the budget ends a session");
    assert_eq!(
        sessions.len(),
        2,
        "two sessions fit in the budget, the third does not"
    );
    let (tag, body) = read_message(&mut &got[..])
        .await
        .expect("an error before the close");
    assert_eq!(tag, b'E');
    assert_eq!(field(&body, b'C').as_deref(), Some(catalog::OUT_OF_MEMORY.code));
    assert_eq!(field(&body, b'S').as_deref(), Some("FATAL"));

    // The sessions within the budget finish their messages and are answered.
    for session in &mut sessions {
        let mut rest = vec![b' '; len as usize - 4 - (3 << 19)];
        rest.splice(rest.len() - 9.., *b"SELECT 1\0");
        session.write_all(&rest).await.expect("the rest");
        let (tag, body) = timeout(Duration::from_secs(10), read_message(session))
            .await
            .expect("an answer")
            .expect("a message");
        assert_ne!(tag, b'E', "{:?}", field(&body, b'M'));
    }
    // Once they are gone, the budget is free again.
    drop(sessions);
    let mut fits = Vec::new();
    for _ in 0..2 {
        let mut session = raw_session(&local).await;
        session.write_all(&partial).await.expect("partial message");
        let (closed, _) = closed_within(&mut session, Duration::from_millis(500)).await;
        fits.push(!closed);
    }
    assert_eq!(fits, [true, true], "the budget was given back");
    local.shutdown().await;
}

#[tokio::test]
async fn a_startup_packet_over_10000_bytes_is_refused() {
    let local = start(DsqlLocal::builder()).await;
    // Exactly 10,000 bytes is read (and refused for want of TLS).
    let packet = |len: u32| {
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(&(3_u32 << 16).to_be_bytes());
        out.extend_from_slice(&cstr("user"));
        out.extend_from_slice(&cstr("admin"));
        let pad = len as usize - out.len() - 1;
        out.extend_from_slice(&cstr("application_name"));
        out.extend_from_slice(&cstr(&"x".repeat(pad - 18)));
        out.push(0);
        out
    };
    for (len, code) in [
        (10_000, catalog::TLS_REQUIRED.code),
        (10_001, catalog::MESSAGE_TOO_LARGE.code),
    ] {
        let wire = packet(len);
        assert_eq!(wire.len(), len as usize);
        let mut tcp = TcpStream::connect(local.addr()).await.expect("connect");
        tcp.write_all(&wire).await.expect("startup");
        let (tag, body) = timeout(Duration::from_secs(5), read_message(&mut tcp))
            .await
            .expect("an answer")
            .expect("an error");
        assert_eq!(tag, b'E');
        assert_eq!(field(&body, b'S').as_deref(), Some("FATAL"));
        assert_eq!(field(&body, b'C').as_deref(), Some(code), "{len} bytes");
        let (closed, _) = closed_within(&mut tcp, Duration::from_secs(5)).await;
        assert!(closed);
    }
    // A header declaring 1 GiB gets the same answer, nothing read after it.
    let mut tcp = TcpStream::connect(local.addr()).await.expect("connect");
    tcp.write_all(&(1_u32 << 30).to_be_bytes()).await.expect("length");
    let (tag, body) = timeout(Duration::from_secs(5), read_message(&mut tcp))
        .await
        .expect("an answer")
        .expect("an error");
    assert_eq!(tag, b'E');
    assert_eq!(
        field(&body, b'C').as_deref(),
        Some(catalog::MESSAGE_TOO_LARGE.code)
    );
    local.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_handshake_cap_are_closed_at_once() {
    const CAP: usize = 4;
    let local = start(DsqlLocal::builder().max_pending_handshakes(CAP)).await;
    let mut idle = Vec::new();
    for _ in 0..CAP {
        idle.push(TcpStream::connect(local.addr()).await.expect("connect"));
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let mut extra = TcpStream::connect(local.addr()).await.expect("connect");
        let (closed, got) = closed_within(&mut extra, Duration::from_secs(1)).await;
        assert!(closed, "a connection beyond the cap was kept");
        assert!(got.is_empty(), "no TLS, no answer: {got:?}");
    }
    // The first ones are still waiting.
    for tcp in &mut idle {
        let mut byte = [0_u8; 1];
        assert!(
            timeout(Duration::from_millis(50), tcp.peek(&mut byte))
                .await
                .is_err(),
            "a connection within the cap was closed"
        );
    }
    drop(idle);
    // Once they are gone, a well-behaved client connects.
    let deadline = Instant::now() + Duration::from_secs(5);
    let client = loop {
        match connect(&local, "admin").await {
            Ok(client) => break client,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no connection once the idle ones are gone: {e}"),
        }
    };
    client.simple_query("SELECT 1").await.expect("query");
    local.shutdown().await;
}

#[tokio::test]
async fn cancel_requests_go_through_admission() {
    let local = start(DsqlLocal::builder().max_connections(1)).await;
    let client = connect(&local, "admin").await.expect("the one connection");
    let mut cancel = 16_u32.to_be_bytes().to_vec();
    cancel.extend_from_slice(&80_877_102_u32.to_be_bytes());
    cancel.extend_from_slice(&1_i32.to_be_bytes());
    cancel.extend_from_slice(&2_i32.to_be_bytes());
    let mut tcp = TcpStream::connect(local.addr()).await.expect("connect");
    tcp.write_all(&cancel).await.expect("cancel");
    let (closed, got) = closed_within(&mut tcp, Duration::from_secs(2)).await;
    assert!(closed && got.is_empty());
    let stats = local.stats();
    assert!(
        eventually(Duration::from_secs(2), || {
            stats.snapshot().refused.get(RefusalReason::TooManyConnections) >= 1
        })
        .await,
        "the cancel request was not counted against the connection limit"
    );
    assert_eq!(stats.snapshot().cancels_relayed, 0);
    drop(client);
    local.shutdown().await;
}

#[tokio::test]
async fn refused_connections_get_a_short_handshake() {
    let local = start(
        DsqlLocal::builder()
            .max_connections(1)
            .refused_handshake_timeout(Duration::from_millis(500)),
    )
    .await;
    let _client = connect(&local, "admin").await.expect("the one connection");
    // Refused at admission, then silent: closed after 0.5 s, not 30.
    let mut tcp = TcpStream::connect(local.addr()).await.expect("connect");
    let opened = Instant::now();
    let (closed, _) = closed_within(&mut tcp, Duration::from_secs(5)).await;
    assert!(closed, "still open after {:?}", opened.elapsed());
    assert!(
        opened.elapsed() >= Duration::from_millis(400),
        "{:?}",
        opened.elapsed()
    );
    local.shutdown().await;
}

#[test]
fn the_defaults_are_postgresql_s_or_documented() {
    let config = LocalConfig::builder().build().expect("valid");
    let bounds = config.bounds();
    assert_eq!(bounds.max_startup_packet, 10_000);
    assert_eq!(bounds.max_message_size, 64 << 20);
    assert_eq!(bounds.max_buffered_bytes, 512 << 20);
    assert_eq!(bounds.max_pending_handshakes, 256);
    assert_eq!(bounds.refused_handshake_timeout, Duration::from_secs(5));
    for builder in [
        LocalConfig::builder().max_startup_packet(7),
        LocalConfig::builder().max_startup_packet(1 << 20),
        LocalConfig::builder().max_message_size(1024),
        LocalConfig::builder().max_message_size(1 << 30),
        LocalConfig::builder().max_pending_handshakes(0),
        LocalConfig::builder()
            .max_message_size(8 << 20)
            .max_buffered_bytes(4 << 20),
        LocalConfig::builder().refused_handshake_timeout(Duration::ZERO),
    ] {
        match builder.build() {
            Err(dsql_local::ConfigError::Invalid { name, .. }) => assert!(name.starts_with("bounds.")),
            other => panic!("accepted: {other:?}"),
        }
    }
    let config = LocalConfig::builder()
        .bounds(bounds)
        .max_message_size((1 << 30) - 1)
        .max_buffered_bytes(1 << 30)
        .build()
        .expect("PostgreSQL's own limit is allowed");
    assert_eq!(config.bounds().max_message_size, (1 << 30) - 1);
}
