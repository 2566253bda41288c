//! No secret in traces, at any level. In its own test binary: tracing caches
//! per call site whether anyone listens, so a test without a subscriber
//! running first in the same process could silence the events under test.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use dsql_auth::{CachingProvider, StaticProvider, TokenProvider};

use crate::common::{Signer, assert_clean, secrets_of};

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

    let Signer { clock, signer, .. } = Signer::new("reader");
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
    let secrets = secrets_of(&token);
    assert_clean("traces", &text, &secrets.each_ref().map(String::as_str));
}
