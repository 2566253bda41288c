//! Logging in to an upstream PostgreSQL that asks for a password:
//! SCRAM-SHA-256, md5 and cleartext.
//!
//! The local PostgreSQL trusts 127.0.0.1, and its `pg_hba.conf` is not ours to
//! change, so an *auth gate* stands in front of it: the gate plays the
//! server's side of the password exchange, as a PostgreSQL with a
//! `host … scram-sha-256` (or `md5`, `password`) line does, then hands the
//! connection to the real PostgreSQL, whose `AuthenticationOk` and greeting
//! follow, as they would after a real password exchange.
//!
//! The SCRAM side checks the client's proof against the verifier that the
//! real PostgreSQL stored for a throwaway role (`pg_authid.rolpassword`),
//! exactly as PostgreSQL does (`H(proof ⊕ HMAC(StoredKey, AuthMessage)) =
//! StoredKey`), and proves itself with `HMAC(ServerKey, AuthMessage)`, which
//! dsql-local must check. Its own arithmetic is checked against RFC 7677's
//! test vector.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use dsql_local::{DsqlLocal, catalog};
use dsql_testkit::local::{connect, db_error};
use dsql_testkit::{direct, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The real PostgreSQL behind the gate.
const POSTGRES: &str = "127.0.0.1:5432";
/// `StartupMessage` protocol version 3.0.
const PROTOCOL_3_0: u32 = 196_608;

// ---- the primitives SCRAM needs, from crates already in the tree ----

/// HMAC-SHA-256, from the SigV4 signer (hex-encoded there).
fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    hex::decode(aws_sigv4::sign::v4::calculate_signature(key, message)).unwrap()
}

/// SHA-256, from rustls' crypto provider.
fn sha256(data: &[u8]) -> Vec<u8> {
    let rustls::SupportedCipherSuite::Tls13(suite) =
        rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256
    else {
        unreachable!("a TLS 1.3 suite")
    };
    suite.common.hash_provider.hash(data).as_ref().to_vec()
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64, padded (test-only: no base64 crate is a dependency).
fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0_u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = BASE64.iter().position(|&b| b == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// A stored SCRAM-SHA-256 verifier:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
#[derive(Clone, Debug)]
struct Verifier {
    iterations: u32,
    salt: String,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl Verifier {
    fn parse(text: &str) -> Self {
        let rest = text.strip_prefix("SCRAM-SHA-256$").expect("a SCRAM verifier");
        let (params, keys) = rest.split_once('$').unwrap();
        let (iterations, salt) = params.split_once(':').unwrap();
        let (stored, server) = keys.split_once(':').unwrap();
        Self {
            iterations: iterations.parse().unwrap(),
            salt: salt.to_owned(),
            stored_key: unbase64(stored),
            server_key: unbase64(server),
        }
    }

    /// PostgreSQL's check of a client proof.
    fn accepts(&self, auth_message: &str, proof: &[u8]) -> bool {
        let client_key = xor(proof, &hmac(&self.stored_key, auth_message.as_bytes()));
        sha256(&client_key) == self.stored_key
    }

    /// The server's signature, base64.
    fn server_signature(&self, auth_message: &str) -> String {
        base64(&hmac(&self.server_key, auth_message.as_bytes()))
    }
}

/// RFC 7677's SCRAM-SHA-256 test vector (user `user`, password `pencil`)
/// validates the gate's arithmetic: a verifier derived as RFC 5802 says
/// accepts the RFC's proof and produces the RFC's server signature.
#[test]
fn the_gates_scram_arithmetic_matches_rfc_7677() {
    // SaltedPassword = Hi(password, salt, 4096), PBKDF2 with HMAC-SHA-256.
    let salt = unbase64("W22ZaJ0SNY7soEsUEjb6gQ==");
    let mut u = hmac(b"pencil", &[salt.as_slice(), &[0, 0, 0, 1]].concat());
    let mut salted = u.clone();
    for _ in 1..4096 {
        u = hmac(b"pencil", &u);
        salted = xor(&salted, &u);
    }
    let verifier = Verifier {
        iterations: 4096,
        salt: "W22ZaJ0SNY7soEsUEjb6gQ==".to_owned(),
        stored_key: sha256(&hmac(&salted, b"Client Key")),
        server_key: hmac(&salted, b"Server Key"),
    };
    let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
        r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
        c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let proof = unbase64("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    assert!(verifier.accepts(auth_message, &proof));
    assert!(!verifier.accepts(auth_message, &xor(&proof, &[1])));
    assert_eq!(
        verifier.server_signature(auth_message),
        "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    );
    assert_eq!(base64(b"n,,"), "biws");
    assert_eq!(unbase64(&base64(b"any carnal pleas")), b"any carnal pleas");
}

// ---- the auth gate ----

/// How the gate asks for the password.
#[derive(Clone, Debug)]
enum Method {
    Cleartext,
    Md5,
    Scram {
        verifier: Verifier,
        /// Sends a wrong server signature: a client that does not check it
        /// would log in to an impostor.
        tamper_server_signature: bool,
    },
}

/// A listener that authenticates each connection with `method` and
/// `password`, then relays it to the real PostgreSQL.
async fn gate(method: Method, password: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let method = Arc::new(method);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(serve(client, Arc::clone(&method), password));
        }
    });
    addr
}

async fn serve(mut client: TcpStream, method: Arc<Method>, password: &str) {
    let len = client.read_u32().await.unwrap() as usize;
    let mut startup = u32::try_from(len).unwrap().to_be_bytes().to_vec();
    startup.resize(len, 0);
    client.read_exact(&mut startup[4..]).await.unwrap();
    let mut upstream = TcpStream::connect(POSTGRES).await.unwrap();
    if u32::from_be_bytes(startup[4..8].try_into().unwrap()) == PROTOCOL_3_0 {
        let user = startup_param(&startup[8..], "user");
        if !authenticate(&mut client, &method, &user, password).await {
            let message = format!("password authentication failed for user \"{user}\"");
            let mut error = Vec::new();
            for (field, value) in [
                (b'S', "FATAL"),
                (b'V', "FATAL"),
                (b'C', "28P01"),
                (b'M', message.as_str()),
            ] {
                error.push(field);
                error.extend_from_slice(value.as_bytes());
                error.push(0);
            }
            error.push(0);
            client.write_all(&message_bytes(b'E', &error)).await.unwrap();
            return;
        }
    }
    // Startup (or cancel request) to the real PostgreSQL, which trusts us:
    // its AuthenticationOk and greeting follow the exchange above.
    upstream.write_all(&startup).await.unwrap();
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

fn startup_param(mut params: &[u8], name: &str) -> String {
    let mut next = || {
        let nul = params.iter().position(|&b| b == 0).unwrap();
        let field = String::from_utf8(params[..nul].to_vec()).unwrap();
        params = &params[nul + 1..];
        field
    };
    loop {
        let key = next();
        assert!(!key.is_empty(), "no {name} in the startup message");
        let value = next();
        if key == name {
            return value;
        }
    }
}

fn message_bytes(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}

async fn send_auth(client: &mut TcpStream, code: u32, data: &[u8]) {
    let body = [&code.to_be_bytes()[..], data].concat();
    client.write_all(&message_bytes(b'R', &body)).await.unwrap();
}

/// Reads a `PasswordMessage`, `SASLInitialResponse` or `SASLResponse` body.
async fn read_response(client: &mut TcpStream) -> Vec<u8> {
    assert_eq!(client.read_u8().await.unwrap(), b'p');
    let len = client.read_u32().await.unwrap() as usize;
    let mut body = vec![0; len - 4];
    client.read_exact(&mut body).await.unwrap();
    body
}

async fn authenticate(client: &mut TcpStream, method: &Method, user: &str, password: &str) -> bool {
    match method {
        Method::Cleartext => {
            send_auth(client, 3, &[]).await;
            read_response(client).await == [password.as_bytes(), &[0]].concat()
        }
        Method::Md5 => {
            let salt = rand::random::<[u8; 4]>();
            send_auth(client, 5, &salt).await;
            let expected =
                postgres_protocol::authentication::md5_hash(user.as_bytes(), password.as_bytes(), salt);
            read_response(client).await == [expected.as_bytes(), &[0]].concat()
        }
        Method::Scram {
            verifier,
            tamper_server_signature,
        } => scram(client, verifier, *tamper_server_signature).await,
    }
}

/// The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677), as PostgreSQL runs
/// it: the user name in the exchange is empty (the startup message has it),
/// and no channel binding over plain TCP.
async fn scram(client: &mut TcpStream, verifier: &Verifier, tamper: bool) -> bool {
    send_auth(client, 10, b"SCRAM-SHA-256\0\0").await;
    let initial = read_response(client).await;
    let nul = initial.iter().position(|&b| b == 0).unwrap();
    assert_eq!(&initial[..nul], b"SCRAM-SHA-256");
    let data = &initial[nul + 5..];
    assert_eq!(
        u32::from_be_bytes(initial[nul + 1..nul + 5].try_into().unwrap()) as usize,
        data.len()
    );
    let client_first = std::str::from_utf8(data).unwrap();
    // "n,,": the client does not support channel binding (plain TCP).
    let client_first_bare = client_first.strip_prefix("n,,").expect("gs2 header n,,");
    let client_nonce = client_first_bare.strip_prefix("n=,r=").expect("n=,r=<nonce>");
    let nonce = format!("{client_nonce}{}", base64(&rand::random::<[u8; 18]>()));
    let server_first = format!("r={nonce},s={},i={}", verifier.salt, verifier.iterations);
    send_auth(client, 11, server_first.as_bytes()).await;

    let response = read_response(client).await;
    let client_final = std::str::from_utf8(&response).unwrap();
    let (without_proof, proof) = client_final.rsplit_once(",p=").expect("a proof");
    assert_eq!(without_proof, format!("c=biws,r={nonce}"));
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    if !verifier.accepts(&auth_message, &unbase64(proof)) {
        return false;
    }
    let mut signature = verifier.server_signature(&auth_message);
    if tamper {
        signature = base64(&xor(&unbase64(&signature), &[0xff]));
    }
    send_auth(client, 12, format!("v={signature}").as_bytes()).await;
    true
}

/// dsql-local over the gate at `gate`, logging in as `user` with `password`.
async fn local_over(gate: SocketAddr, user: &str, password: Option<&str>) -> DsqlLocal {
    local_with_query(gate, user, password, "").await
}

/// [`local_over`] with a query string on the upstream URL.
async fn local_with_query(gate: SocketAddr, user: &str, password: Option<&str>, query: &str) -> DsqlLocal {
    let password = password.map(|p| format!(":{p}")).unwrap_or_default();
    DsqlLocal::builder()
        .upstream(format!("postgres://{user}{password}@{gate}/postgres{query}"))
        .start()
        .await
        .unwrap()
}

/// The detail of the refusal a client gets when dsql-local cannot log in
/// upstream.
fn upstream_refusal(result: Result<String, tokio_postgres::Error>) -> String {
    let error = result.expect_err("the upstream login is refused");
    let db = db_error(&error);
    assert_eq!(db.code().code(), catalog::UPSTREAM_UNAVAILABLE.code, "{db:?}");
    db.detail().unwrap_or_default().to_owned()
}

async fn current_user(local: &DsqlLocal) -> Result<String, tokio_postgres::Error> {
    let client = connect(local, "admin").await?;
    let row = client.query_one("SELECT current_user::text", &[]).await?;
    Ok(row.get(0))
}

/// A role with a password, stored by the real PostgreSQL as a SCRAM
/// verifier; dropped by [`drop_role`].
async fn scram_role(password: &str) -> (String, Verifier) {
    let role = unique("dsql_local_scram");
    let admin = direct().await;
    admin
        .batch_execute(&format!(
            "SET password_encryption = 'scram-sha-256'; CREATE ROLE {role} LOGIN PASSWORD '{password}'"
        ))
        .await
        .unwrap();
    let stored: String = admin
        .query_one("SELECT rolpassword FROM pg_authid WHERE rolname = $1", &[&role])
        .await
        .unwrap()
        .get(0);
    (role, Verifier::parse(&stored))
}

async fn drop_role(role: &str) {
    direct()
        .await
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn scram_sha_256_with_the_real_postgresqls_verifier() {
    const PASSWORD: &str = "correct-horse-battery-staple";
    let (role, verifier) = scram_role(PASSWORD).await;
    let scram = |tamper_server_signature| Method::Scram {
        verifier: verifier.clone(),
        tamper_server_signature,
    };

    // The right password: the session is the role's.
    let local = local_over(gate(scram(false), PASSWORD).await, &role, Some(PASSWORD)).await;
    let result = current_user(&local).await;
    local.shutdown().await;

    // A wrong password: the upstream's refusal reaches the client as is.
    let local = local_over(gate(scram(false), PASSWORD).await, &role, Some("wrong")).await;
    let refused = current_user(&local).await;
    local.shutdown().await;

    // An upstream that cannot prove it knows the password is not trusted.
    let local = local_over(gate(scram(true), PASSWORD).await, &role, Some(PASSWORD)).await;
    let impostor = current_user(&local).await;
    local.shutdown().await;

    // No password in the upstream URL.
    let local = local_over(gate(scram(false), PASSWORD).await, &role, None).await;
    let missing = current_user(&local).await;
    local.shutdown().await;
    drop_role(&role).await;

    assert_eq!(result.unwrap(), role);

    let refused = refused.expect_err("wrong password");
    let db = db_error(&refused);
    assert_eq!((db.code().code(), db.severity()), ("28P01", "FATAL"), "{db:?}");

    let impostor = impostor.expect_err("bad server signature");
    let db = db_error(&impostor);
    assert_eq!(db.code().code(), catalog::UPSTREAM_UNAVAILABLE.code, "{db:?}");
    assert!(
        db.detail().unwrap_or_default().contains("SCRAM-SHA-256"),
        "{db:?}"
    );

    let missing = missing.expect_err("no password");
    let db = db_error(&missing);
    assert!(
        db.detail().unwrap_or_default().contains("upstream URL has none"),
        "{db:?}"
    );
}

#[tokio::test]
async fn md5_and_cleartext_passwords() {
    for (method, query) in [(Method::Md5, ""), (Method::Cleartext, "?require_auth=password")] {
        let local = local_with_query(
            gate(method.clone(), "s3cret").await,
            "postgres",
            Some("s3cret"),
            query,
        )
        .await;
        assert_eq!(current_user(&local).await.unwrap(), "postgres", "{method:?}");
        local.shutdown().await;

        let local = local_with_query(
            gate(method.clone(), "s3cret").await,
            "postgres",
            Some("nope"),
            query,
        )
        .await;
        let error = current_user(&local).await.expect_err("wrong password");
        assert_eq!(db_error(&error).code().code(), "28P01", "{method:?}");
        local.shutdown().await;
    }
}

/// The password goes out only by a method the upstream URL allows: by
/// default never in cleartext over the plain TCP connection, and with
/// `require_auth=scram-sha-256` never by md5 nor to an upstream that asks for
/// nothing (libpq's `require_auth`).
#[tokio::test]
async fn a_weaker_method_than_required_is_refused_before_the_password_goes_out() {
    let asked_for_password = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A gate that asks for the password in cleartext and records whether it
    // got an answer.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cleartext = listener.local_addr().unwrap();
    let answered = Arc::clone(&asked_for_password);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let answered = Arc::clone(&answered);
            tokio::spawn(async move {
                let len = client.read_u32().await.unwrap() as usize;
                let mut startup = vec![0; len - 4];
                client.read_exact(&mut startup).await.unwrap();
                send_auth(&mut client, 3, &[]).await;
                let mut byte = [0_u8; 1];
                if client.read(&mut byte).await.unwrap_or(0) > 0 {
                    answered.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });

    // Cleartext, by default.
    let local = local_over(cleartext, "postgres", Some("s3cret")).await;
    let detail = upstream_refusal(current_user(&local).await);
    local.shutdown().await;
    assert!(detail.contains("password authentication"), "{detail}");
    assert!(detail.contains("require_auth=none,md5,scram-sha-256"), "{detail}");
    assert!(!asked_for_password.load(std::sync::atomic::Ordering::SeqCst));

    // md5, when SCRAM is required.
    let local = local_with_query(
        gate(Method::Md5, "s3cret").await,
        "postgres",
        Some("s3cret"),
        "?require_auth=scram-sha-256",
    )
    .await;
    let detail = upstream_refusal(current_user(&local).await);
    local.shutdown().await;
    assert!(detail.contains("md5 authentication"), "{detail}");

    // No exchange at all (the local PostgreSQL trusts loopback), when SCRAM
    // is required: the upstream could be anyone.
    let local = DsqlLocal::builder()
        .upstream(format!(
            "postgres://postgres:s3cret@{POSTGRES}/postgres?require_auth=scram-sha-256"
        ))
        .start()
        .await
        .unwrap();
    let detail = upstream_refusal(current_user(&local).await);
    local.shutdown().await;
    assert!(detail.contains("none authentication"), "{detail}");

    // And a bad value is a configuration error at start.
    let error = DsqlLocal::builder()
        .upstream(format!(
            "postgres://postgres@{POSTGRES}/postgres?require_auth=md5,!password"
        ))
        .start()
        .await
        .expect_err("mixed require_auth");
    assert!(error.to_string().contains("require_auth"), "{error}");
}
