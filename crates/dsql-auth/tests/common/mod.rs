//! What the leak tests (`redaction.rs`, `traces.rs`) share: the secrets they
//! hunt for and a signer that holds them. Those tests stay separate binaries:
//! tracing caches per call site whether anyone listens, so a test without a
//! subscriber running first in the same process could hide a leak.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use dsql_auth::clock::ManualClock;
use dsql_auth::{AuthToken, DsqlConfig, SigningProvider};

/// The secret access key of the test credentials.
pub(crate) const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
/// Their session token (temporary credentials).
pub(crate) const SESSION_TOKEN: &str = "FwoGZXIvYXdzSESSIONTOKEN";

/// Fails if `text` contains any of `secrets`.
pub(crate) fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} leaks {secret:?}: {text}");
    }
}

/// A signer with temporary credentials (key, secret, session token, valid one
/// hour) on a manual clock.
#[allow(dead_code, reason = "each test binary reads the fields it needs")]
pub(crate) struct Signer {
    /// Where the clock starts.
    pub(crate) start: SystemTime,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) config: DsqlConfig,
    pub(crate) signer: SigningProvider,
}

impl Signer {
    /// Signs for `user` on the test cluster.
    pub(crate) fn new(user: &str) -> Self {
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let clock = Arc::new(ManualClock::new(start));
        let config = DsqlConfig::builder()
            .host("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws")
            .user(user)
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
        Self {
            start,
            clock,
            config,
            signer,
        }
    }
}

/// Everything secret about `token`: the whole token, its signature, the
/// secret key and the session token.
pub(crate) fn secrets_of(token: &AuthToken) -> [String; 4] {
    let secret = token.expose_secret();
    let signature = secret
        .split('&')
        .find_map(|pair| pair.strip_prefix("X-Amz-Signature="))
        .unwrap();
    assert_eq!(signature.len(), 64, "a SigV4 signature");
    [
        secret.to_owned(),
        signature.to_owned(),
        SECRET_KEY.to_owned(),
        SESSION_TOKEN.to_owned(),
    ]
}
