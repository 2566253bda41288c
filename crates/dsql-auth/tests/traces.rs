//! No secret in traces, at any level. In its own test binary: tracing caches
//! per call site whether anyone listens, so a test without a subscriber
//! running first in the same process could silence the events under test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use dsql_auth::clock::ManualClock;
use dsql_auth::{CachingProvider, DsqlConfig, SigningProvider, StaticProvider, TokenProvider};

const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzSESSIONTOKEN";

fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} leaks {secret:?}: {text}");
    }
}

/// A writer that collects everything the subscriber prints.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn traces_carry_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let clock = Arc::new(ManualClock::new(start));
    let config = DsqlConfig::builder()
        .host("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws")
        .user("reader")
        .build()
        .unwrap();
    let credentials = Credentials::new(
        "AKIDEXAMPLE",
        SECRET_KEY,
        Some(SESSION_TOKEN.into()),
        Some(start + Duration::from_secs(3600)),
        "test",
    );
    let signer = SigningProvider::builder(&config)
        .credentials_provider(credentials)
        .clock(clock.clone())
        .build();
    let caching = CachingProvider::builder(signer)
        .clock(clock.clone())
        .build()
        .unwrap();
    let token = caching.token().await.unwrap();
    caching.invalidate(&token);
    let token = caching.token().await.unwrap();

    // A refresh that fails is logged; its message must not carry the token.
    let failing = CachingProvider::builder(StaticProvider::new(token.clone()).with_clock(clock.clone()))
        .clock(clock.clone())
        .build()
        .unwrap();
    failing.token().await.unwrap();
    clock.advance(Duration::from_secs(3600));
    assert!(failing.token().await.is_err());

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("dsql.token.sign"), "signing span missing: {text}");
    assert!(
        text.contains("dsql.credentials.resolve"),
        "credentials span missing: {text}"
    );
    assert!(
        text.contains("DSQL token refresh failed"),
        "failed refresh not logged: {text}"
    );
    let signature = token
        .expose_secret()
        .split('&')
        .find_map(|pair| pair.strip_prefix("X-Amz-Signature="))
        .unwrap();
    assert_clean(
        "traces",
        &text,
        &[token.expose_secret(), signature, SECRET_KEY, SESSION_TOKEN],
    );
}
