use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use dsql_auth::{AuthToken, TokenError, TokenProvider};
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

use super::TokenLayer;
use crate::classify::ErrorClass;
use crate::error::BoxError;

/// The connector's error in these tests: anything the mock sends, or a token error.
#[derive(Debug)]
enum TestError {
    Refused,
    Other(BoxError),
    Token(TokenError),
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused => f.write_str("refused"),
            Self::Other(error) => write!(f, "{error}"),
            Self::Token(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for TestError {}

impl From<TokenError> for TestError {
    fn from(error: TokenError) -> Self {
        Self::Token(error)
    }
}

/// Mints `token-N`; counts calls and invalidations.
#[derive(Clone, Default)]
struct Counting {
    calls: Arc<AtomicUsize>,
    invalidated: Arc<AtomicUsize>,
    fail: bool,
}

impl TokenProvider for Counting {
    async fn token(&self) -> Result<AuthToken, TokenError> {
        if self.fail {
            return Err(TokenError::provider("vault sealed"));
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let now = SystemTime::now();
        Ok(AuthToken::new(
            format!("token-{n}"),
            now,
            now + Duration::from_secs(60),
        ))
    }

    fn invalidate(&self, rejected: &AuthToken) {
        assert!(rejected.expose_secret().starts_with("token-"));
        self.invalidated.fetch_add(1, Ordering::SeqCst);
    }
}

fn classifier(error: &(dyn std::error::Error + 'static)) -> ErrorClass {
    match error.downcast_ref::<TestError>() {
        Some(TestError::Refused) => ErrorClass::Reauthenticate,
        _ => ErrorClass::Fatal,
    }
}

type Layered = super::TokenService<
    tower::util::MapErr<mock::Mock<tokio_postgres::Config, &'static str>, fn(BoxError) -> TestError>,
    Counting,
>;

fn service(provider: Counting) -> (Layered, mock::Handle<tokio_postgres::Config, &'static str>) {
    let (mock, handle) = mock::pair::<tokio_postgres::Config, &'static str>();
    let to_test_error: fn(BoxError) -> TestError = |error| {
        if error.to_string() == "refused" {
            TestError::Refused
        } else {
            TestError::Other(error)
        }
    };
    let classify: fn(&(dyn std::error::Error + 'static)) -> ErrorClass = classifier;
    let layer = TokenLayer::new(provider).classifier(classify);
    (layer.layer(mock.map_err(to_test_error)), handle)
}

#[tokio::test]
async fn each_connect_carries_the_token_as_its_password() {
    let provider = Counting::default();
    let (mut service, mut handle) = service(provider.clone());
    for expected in ["token-1", "token-2"] {
        handle.allow(1);
        let call = service.ready().await.unwrap().call(tokio_postgres::Config::new());
        let serve = async {
            let (config, respond) = handle.next_request().await.unwrap();
            assert_eq!(config.get_password(), Some(expected.as_bytes()));
            respond.send_response("connected");
        };
        let (result, ()) = tokio::join!(call, serve);
        assert_eq!(result.unwrap(), "connected");
    }
    assert_eq!(provider.invalidated.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_refused_token_is_invalidated_other_errors_are_not() {
    let provider = Counting::default();
    let (mut service, mut handle) = service(provider.clone());
    for (error, invalidations) in [("refused", 1), ("network down", 1)] {
        handle.allow(1);
        let call = service.ready().await.unwrap().call(tokio_postgres::Config::new());
        let serve = async {
            let (_config, respond) = handle.next_request().await.unwrap();
            respond.send_error(std::io::Error::other(error));
        };
        let (result, ()) = tokio::join!(call, serve);
        assert!(result.is_err());
        assert_eq!(
            provider.invalidated.load(Ordering::SeqCst),
            invalidations,
            "after {error}"
        );
    }
}

#[tokio::test]
async fn a_provider_failure_is_the_connect_error() {
    let provider = Counting {
        fail: true,
        ..Counting::default()
    };
    let (mut service, mut handle) = service(provider);
    handle.allow(1);
    let error = service
        .ready()
        .await
        .unwrap()
        .call(tokio_postgres::Config::new())
        .await
        .unwrap_err();
    assert!(
        matches!(error, TestError::Token(TokenError::Provider { .. })),
        "{error:?}"
    );
    // The connector was never called.
    assert!(handle.poll_request().is_pending());
}

/// A provider that signs for admin@a.
#[derive(Clone, Default)]
struct ScopedToAdmin(Counting);

impl TokenProvider for ScopedToAdmin {
    async fn token(&self) -> Result<AuthToken, TokenError> {
        self.0.token().await
    }

    fn scope(&self) -> Option<dsql_auth::TokenScope> {
        Some(dsql_auth::TokenScope::new("a.example", "admin"))
    }
}

#[tokio::test]
async fn a_token_for_another_scope_is_never_sent() {
    let (mock, mut handle) = mock::pair::<tokio_postgres::Config, &'static str>();
    let to_test_error: fn(BoxError) -> TestError = TestError::Other;
    let provider = ScopedToAdmin::default();
    let mut service = TokenLayer::new(provider.clone()).layer(mock.map_err(to_test_error));
    handle.allow(1);
    let mut reader = tokio_postgres::Config::new();
    reader.host("a.example").user("reader");
    let error = service.ready().await.unwrap().call(reader).await.unwrap_err();
    assert!(
        matches!(error, TestError::Token(TokenError::WrongScope { .. })),
        "{error:?}"
    );
    assert_eq!(
        provider.0.calls.load(Ordering::SeqCst),
        0,
        "no token was even made"
    );
    assert!(handle.poll_request().is_pending(), "nothing was connected");

    // The same scope passes (host names compare without case).
    let mut admin = tokio_postgres::Config::new();
    admin.host("A.example").user("admin");
    let call = service.ready().await.unwrap().call(admin);
    let serve = async {
        let (_, respond) = handle.next_request().await.unwrap();
        respond.send_response("connected");
    };
    let (result, ()) = tokio::join!(call, serve);
    assert_eq!(result.unwrap(), "connected");
}
