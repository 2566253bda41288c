use std::fmt;

use tower::Layer;

use super::TokenService;
use crate::classify::{Classify, SharedClassifier};

/// Sets a token from a [`TokenProvider`](dsql_auth::TokenProvider) as the
/// password of every connect that passes through; see [`TokenService`].
///
/// ```
/// use dsql_auth::{AuthToken, StaticProvider};
/// use dsql_tower::TokenLayer;
/// use std::time::{Duration, SystemTime};
/// use tower::{service_fn, Layer, Service, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let now = SystemTime::now();
/// let provider = StaticProvider::new(AuthToken::new("t0k3n", now, now + Duration::from_secs(60)));
/// // Stands in for a connector: returns the password it was given.
/// let connect = service_fn(|config: tokio_postgres::Config| async move {
///     Ok::<_, dsql_tower::ConnectError>(String::from_utf8(config.get_password().unwrap().to_vec()).unwrap())
/// });
/// let mut service = TokenLayer::new(provider).layer(connect);
/// let password = service.ready().await.unwrap().call(tokio_postgres::Config::new()).await.unwrap();
/// assert_eq!(password, "t0k3n");
/// # }
/// ```
#[derive(Clone)]
pub struct TokenLayer<P> {
    provider: P,
    classifier: SharedClassifier,
}

impl<P> TokenLayer<P> {
    /// Takes tokens from `provider`, and recognizes refusals with
    /// [`DsqlClassifier`](crate::DsqlClassifier).
    pub fn new(provider: P) -> Self {
        Self {
            provider,
            classifier: SharedClassifier::default(),
        }
    }

    /// Recognizes refused tokens with `classifier` instead.
    pub fn classifier(self, classifier: impl Classify + 'static) -> Self {
        self.shared_classifier(SharedClassifier::new(classifier))
    }

    pub(crate) fn shared_classifier(mut self, classifier: SharedClassifier) -> Self {
        self.classifier = classifier;
        self
    }
}

impl<S, P: Clone> Layer<S> for TokenLayer<P> {
    type Service = TokenService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        TokenService::new(inner, self.provider.clone(), self.classifier.clone())
    }
}

impl<P: fmt::Debug> fmt::Debug for TokenLayer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenLayer")
            .field("provider", &self.provider)
            .field("classifier", &self.classifier)
            .finish()
    }
}
