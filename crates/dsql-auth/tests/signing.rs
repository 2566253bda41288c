//! `SigningProvider`: known-answer vectors, credential caching, expiry caps.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, future};
use dsql_auth::clock::ManualClock;
use dsql_auth::{DsqlConfig, Endpoint, SigningProvider, TokenClaims, TokenError, TokenProvider};

const SIGNED_AT: u64 = 1_724_716_800; // 2024-08-27T00:00:00Z
const VECTOR_DB_CONNECT: &str = "peccy.dsql.us-east-1.on.aws/?Action=DbConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=akid%2F20240827%2Fus-east-1%2Fdsql%2Faws4_request&X-Amz-Date=20240827T000000Z&X-Amz-Expires=450&X-Amz-SignedHeaders=host&X-Amz-Signature=f5f2ad764ca5df44045d4ab6ccecba0eef941b0007e5765885a0b6ed3702a3f8";
const ADMIN_SIGNATURE: &str = "267cf8d04d84444f7a62d5bdb40c44bfc6cb13dd6c64fa7f772df6bbaa90fff1";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The vectors' host is not a real 26-character cluster id, so it is used as
/// a custom endpoint; what is signed is the same host string.
fn vector_config(user: &str, secs: u64) -> DsqlConfig {
    DsqlConfig::builder()
        .endpoint(Endpoint::custom("peccy.dsql.us-east-1.on.aws", "us-east-1").unwrap())
        .user(user)
        .token_duration(Duration::from_secs(secs))
        .build()
        .unwrap()
}

fn provider(
    config: &DsqlConfig,
    credentials: impl ProvideCredentials + 'static,
    now: SystemTime,
) -> SigningProvider {
    SigningProvider::builder(config)
        .credentials_provider(credentials)
        .clock(Arc::new(ManualClock::new(now)))
        .build()
}

#[tokio::test]
async fn known_answer_vectors_reproduce_byte_for_byte() {
    let credentials = Credentials::new("akid", "secret", None, None, "test");

    let reader = provider(&vector_config("reader", 450), credentials.clone(), at(SIGNED_AT));
    let token = reader.token().await.unwrap();
    assert_eq!(token.expose_secret(), VECTOR_DB_CONNECT);
    assert_eq!(token.issued_at(), at(SIGNED_AT));
    assert_eq!(token.expires_at(), at(SIGNED_AT + 450));
    // The validity the provider reports is the one signed into the token.
    let claims = TokenClaims::parse(token.expose_secret()).unwrap();
    assert_eq!(
        (claims.issued_at, claims.expires_at()),
        (token.issued_at(), token.expires_at())
    );

    let admin = provider(&vector_config("admin", 450), credentials, at(SIGNED_AT));
    let token = admin.token().await.unwrap();
    let expected_admin = VECTOR_DB_CONNECT
        .replace("Action=DbConnect&", "Action=DbConnectAdmin&")
        .replace(
            "f5f2ad764ca5df44045d4ab6ccecba0eef941b0007e5765885a0b6ed3702a3f8",
            ADMIN_SIGNATURE,
        );
    assert_eq!(token.expose_secret(), expected_admin);
}

#[tokio::test]
async fn the_reported_expiry_is_never_later_than_the_signed_one() {
    // With the system clock and sub-second times, the reported validity
    // matches the token's own X-Amz-Date + X-Amz-Expires, or is earlier.
    let config = vector_config("admin", 900);
    let signer = SigningProvider::builder(&config)
        .credentials_provider(Credentials::new("akid", "secret", None, None, "test"))
        .build();
    for _ in 0..50 {
        let token = signer.token().await.unwrap();
        let claims = TokenClaims::parse(token.expose_secret()).unwrap();
        assert!(token.expires_at() <= claims.expires_at());
        assert!(claims.expires_at().duration_since(token.expires_at()).unwrap() <= Duration::from_secs(1));
    }
}

#[tokio::test]
async fn temporary_credentials_add_the_security_token() {
    let credentials = Credentials::new("akid", "secret", Some("session-token".into()), None, "test");
    let token = provider(&vector_config("admin", 450), credentials, at(SIGNED_AT))
        .token()
        .await
        .unwrap();
    assert!(
        token
            .expose_secret()
            .contains("&X-Amz-Security-Token=session-token")
    );
    assert!(
        TokenClaims::parse(token.expose_secret())
            .unwrap()
            .has_session_token
    );
}

#[tokio::test]
async fn a_token_never_outlives_its_credentials() {
    let expiry = at(SIGNED_AT + 120);
    let credentials = Credentials::new("akid", "secret", Some("s".into()), Some(expiry), "test");
    let token = provider(&vector_config("admin", 900), credentials, at(SIGNED_AT))
        .token()
        .await
        .unwrap();
    assert_eq!(token.expires_at(), expiry);
    assert_eq!(
        TokenClaims::parse(token.expose_secret()).unwrap().expires_in,
        Duration::from_secs(120)
    );

    // Credentials that outlive the token do not stretch it.
    let long = Credentials::new(
        "akid",
        "secret",
        Some("s".into()),
        Some(at(SIGNED_AT + 86_400)),
        "test",
    );
    let token = provider(&vector_config("admin", 900), long, at(SIGNED_AT))
        .token()
        .await
        .unwrap();
    assert_eq!(token.lifetime(), Duration::from_secs(900));
}

#[tokio::test]
async fn expired_credentials_are_a_typed_error() {
    let credentials = Credentials::new(
        "akid",
        "secret",
        Some("s".into()),
        Some(at(SIGNED_AT - 1)),
        "test",
    );
    let err = provider(&vector_config("admin", 900), credentials, at(SIGNED_AT))
        .token()
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::CredentialsExpired { .. }), "{err:?}");
    assert!(err.to_string().contains("too soon to sign"), "{err}");
}

#[tokio::test]
async fn missing_credentials_are_a_typed_error() {
    let err = SigningProvider::builder(&vector_config("admin", 900))
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::Credentials { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no AWS credentials were configured"),
        "{err}"
    );
}

/// A credential source that counts resolutions and takes a while, like IMDS.
#[derive(Debug, Clone)]
struct SlowSource {
    calls: Arc<AtomicUsize>,
    expiry: SystemTime,
}

impl ProvideCredentials for SlowSource {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(Credentials::new(
                "akid",
                "secret",
                Some("s".into()),
                Some(self.expiry),
                "slow",
            ))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_signers_share_one_credential_resolution() {
    let calls = Arc::new(AtomicUsize::new(0));
    let clock = ManualClock::new(at(SIGNED_AT));
    let source = SlowSource {
        calls: Arc::clone(&calls),
        expiry: at(SIGNED_AT + 3600),
    };
    let signer = SigningProvider::builder(&vector_config("admin", 900))
        .credentials_provider(source)
        .clock(Arc::new(clock.clone()))
        .build();

    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let signer = signer.clone();
            tokio::spawn(async move { signer.token().await.map(|t| t.expires_at()) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), at(SIGNED_AT + 900));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one resolution for 200 concurrent tokens"
    );

    // Within the refresh buffer (5 min before expiry) credentials are resolved again.
    clock.advance(Duration::from_secs(3600 - 299));
    signer.token().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A clock past year 9999 used to panic (in the SDK's date formatting, and
/// at the end of `SystemTime` in `issued_at + expires_in`): now a typed
/// error, raised before signing.
#[tokio::test]
async fn a_clock_past_year_9999_is_an_error_not_a_panic() {
    let last = std::iter::successors(Some(i64::MAX as u64), |secs| Some(secs / 2))
        .find_map(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
        .unwrap();
    let year_10000 = at(253_402_300_800);
    let credentials = Credentials::new("akid", "secret", None, None, "test");
    for now in [last, year_10000, UNIX_EPOCH - Duration::from_secs(1)] {
        let signer = provider(&vector_config("reader", 900), credentials.clone(), now);
        let err = signer.token().await.unwrap_err();
        assert!(matches!(err, TokenError::Signing { .. }), "{err:?}");
        assert!(err.to_string().contains("years 1970 to 9999"), "{err}");
    }
    // The last signable second still signs.
    let signer = provider(&vector_config("reader", 900), credentials, at(253_402_300_799));
    let token = signer.token().await.unwrap();
    assert!(token.expose_secret().contains("X-Amz-Date=99991231T235959Z"));
}
