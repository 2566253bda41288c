use super::*;

#[test]
fn error_response_round_trips() {
    let mut out = Vec::new();
    let mut error = ErrorResponse::from_catalog(&crate::catalog::ACCESS_DENIED);
    error.hint = Some("Signature expired");
    error.encode(&mut out);
    assert_eq!(out[0], b'E');
    let len = u32::from_be_bytes([out[1], out[2], out[3], out[4]]) as usize;
    assert_eq!(len + 1, out.len());
    let body = &out[5..];
    assert_eq!(error_field(body, b'S'), Some(&b"FATAL"[..]));
    assert_eq!(error_field(body, b'V'), Some(&b"FATAL"[..]));
    assert_eq!(error_field(body, b'C'), Some(&b"08006"[..]));
    assert_eq!(
        error_field(body, b'M'),
        Some(&b"unable to accept connection, access denied"[..])
    );
    assert_eq!(error_field(body, b'H'), Some(&b"Signature expired"[..]));
    assert_eq!(error_field(body, b'D'), None);
}

#[test]
fn frames_split_across_reads() {
    let mut reader = FrameReader::new();
    let mut wire = Vec::new();
    put_query(&mut wire, "SELECT 1");
    put_ready_for_query(&mut wire, b'I');
    reader.push_bytes(&wire[..3]);
    assert!(reader.next_frame().expect("valid").is_none());
    reader.push_bytes(&wire[3..]);
    let q = reader.next_frame().expect("valid").expect("complete");
    assert_eq!(q.tag, b'Q');
    assert_eq!(cstr(reader.body(&q)).map(|(s, _)| s), Some(&b"SELECT 1"[..]));
    let z = reader.next_frame().expect("valid").expect("complete");
    assert_eq!((z.tag, reader.body(&z)), (b'Z', &b"I"[..]));
    assert!(reader.next_frame().expect("valid").is_none());
    assert!(!reader.has_partial());
}

#[test]
fn bad_lengths_are_errors() {
    let mut reader = FrameReader::new();
    reader.push_bytes(&[b'Q', 0, 0, 0, 2]);
    assert!(matches!(reader.next_frame(), Err(ProtocolError::BadLength(2))));
}

#[test]
fn declared_lengths_reserve_nothing() {
    let mut reader = FrameReader::with_max_len(1 << 20);
    // A `Query` declaring 512 KiB (within the bound), body not sent.
    reader.push_bytes(&[b'Q', 0, 8, 0, 0, b'S']);
    assert!(reader.next_frame().expect("within the bound").is_none());
    assert!(reader.capacity() < 64 * 1024, "{}", reader.capacity());
    // Over the bound: an error at once.
    let mut reader = FrameReader::with_max_len(1 << 20);
    reader.push_bytes(&[b'Q', 0x40, 0, 0, 0]);
    assert!(matches!(
        reader.next_frame(),
        Err(ProtocolError::BadLength(0x4000_0000))
    ));
}

#[tokio::test]
async fn oversized_startup_packets_are_refused_before_reading() {
    let mut wire = 10_001_u32.to_be_bytes().to_vec();
    wire.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    assert!(matches!(
        read_startup_bounded(&mut &wire[..], MAX_STARTUP_LEN).await,
        Err(ProtocolError::BadLength(10_001))
    ));
}

#[tokio::test]
async fn startup_packets_parse() {
    let wire = startup_message([("user", "admin"), ("database", "postgres")]);
    let Ok(StartupPacket::Startup(msg)) = read_startup(&mut &wire[..]).await else {
        panic!("not a startup message");
    };
    assert_eq!(msg.version, PROTOCOL_3_0);
    assert_eq!(msg.param("user"), Some("admin"));
    assert_eq!(msg.param("database"), Some("postgres"));

    let mut ssl = 8_u32.to_be_bytes().to_vec();
    ssl.extend_from_slice(&SSL_REQUEST.to_be_bytes());
    assert!(matches!(
        read_startup(&mut &ssl[..]).await,
        Ok(StartupPacket::Ssl)
    ));

    let mut cancel = 16_u32.to_be_bytes().to_vec();
    cancel.extend_from_slice(&CANCEL_REQUEST.to_be_bytes());
    cancel.extend_from_slice(&7_i32.to_be_bytes());
    cancel.extend_from_slice(&(-9_i32).to_be_bytes());
    assert!(matches!(
        read_startup(&mut &cancel[..]).await,
        Ok(StartupPacket::Cancel { pid: 7, secret: -9 })
    ));
}

#[tokio::test]
async fn buffers_charge_the_shared_budget_and_give_it_back() {
    use super::MemoryBudget;
    use super::budget::FREE_PER_BUFFER;

    let budget = MemoryBudget::new(2 << 20);
    // A message of 1.5 MiB arriving: the buffer grows past its free share
    // and charges the budget for it.
    let big = 3 << 19;
    let mut message = vec![b'Q'];
    message.extend_from_slice(&u32::try_from(big + 4).expect("small").to_be_bytes());
    message.resize(5 + big, b'x');
    let mut first = FrameReader::budgeted(4 << 20, budget.clone());
    let mut input = &message[..];
    while first.next_frame().expect("valid").is_none() {
        assert!(first.fill(&mut input).await.expect("within budget") > 0);
    }
    assert!(first.charged() >= big - FREE_PER_BUFFER);
    assert_eq!(budget.used(), first.charged());

    // A second reader cannot take what is left past the budget.
    let mut second = FrameReader::budgeted(4 << 20, budget.clone());
    let mut input = &message[..];
    let error = loop {
        match second.fill(&mut input).await {
            Ok(n) => assert!(n > 0, "the budget runs out before the message ends"),
            Err(e) => break e,
        }
    };
    assert_eq!(error.kind(), std::io::ErrorKind::OutOfMemory);
    assert!(budget.used() <= 2 << 20);

    // Readers give back what they hold when they go.
    drop(first);
    drop(second);
    assert_eq!(budget.used(), 0);
}
