use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project::pin_project;
use tower::{Layer, Service};

use super::{Classify, SharedClassifier};
use crate::error::{BoxError, Error, Phase};

/// Attaches an [`ErrorClass`](super::ErrorClass) to every error of the
/// service below, turning it into an [`Error`].
///
/// Errors that already are an [`Error`] (from a
/// [`Session`](crate::Session) or a pool, which classify where the failure
/// happens) pass through as they are: a failure is classified once. Set
/// the classifier where the connections live (`SessionBuilder::classifier`,
/// the pool builder's `classifier`); this layer serves services that do not
/// classify their own errors.
///
/// ```
/// use dsql_tower::classify::{ClassifyLayer, ErrorClass};
/// use tower::{service_fn, Layer, Service, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let failing = service_fn(|_: ()| async {
///     Err::<(), _>(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
/// });
/// let mut service = ClassifyLayer::new().layer(failing);
/// let error = service.ready().await.unwrap().call(()).await.unwrap_err();
/// assert_eq!(error.class(), ErrorClass::Reconnect);
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct ClassifyLayer {
    classifier: SharedClassifier,
}

impl ClassifyLayer {
    /// Classifies with [`DsqlClassifier`](super::DsqlClassifier).
    pub fn new() -> Self {
        Self::default()
    }

    /// Classifies with `classifier` instead.
    pub fn classifier(mut self, classifier: impl Classify + 'static) -> Self {
        self.classifier = SharedClassifier::new(classifier);
        self
    }
}

impl<S> Layer<S> for ClassifyLayer {
    type Service = ClassifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClassifyService::new(inner, self.classifier.clone())
    }
}

/// The service made by [`ClassifyLayer`].
#[derive(Clone, Debug)]
pub struct ClassifyService<S> {
    inner: S,
    classifier: SharedClassifier,
}

impl<S> ClassifyService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, classifier: SharedClassifier) -> Self {
        Self { inner, classifier }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, R> Service<R> for ClassifyService<S>
where
    S: Service<R>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ClassifyFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|error| classify(&self.classifier, error.into(), Phase::Unknown))
    }

    fn call(&mut self, request: R) -> Self::Future {
        ClassifyFuture {
            inner: self.inner.call(request),
            classifier: self.classifier.clone(),
        }
    }
}

/// The future of [`ClassifyService`].
#[pin_project]
#[derive(Debug)]
pub struct ClassifyFuture<F> {
    #[pin]
    inner: F,
    classifier: SharedClassifier,
}

impl<F, T, E> Future for ClassifyFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        Poll::Ready(result.map_err(|error| classify(this.classifier, error.into(), Phase::Unknown)))
    }
}

/// `error` as an [`Error`]: classified by `classifier` in `phase`, unless it
/// already is one (then its class and phase are kept: classified once).
pub(crate) fn classify<C: Classify + ?Sized>(classifier: &C, error: BoxError, phase: Phase) -> Error {
    match error.downcast::<Error>() {
        Ok(error) => *error,
        Err(error) => {
            let class = classifier.classify(&*error);
            Error::new(class, phase, error)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use tower::{Layer, Service, ServiceExt};
    use tower_test::mock;

    use super::*;
    use crate::classify::ErrorClass;

    #[tokio::test]
    async fn call_errors_are_classified_and_responses_pass_through() {
        let (mock, mut handle) = mock::pair::<&'static str, u32>();
        let mut service = ClassifyLayer::new().layer(mock);

        handle.allow(2);
        let ok = service.ready().await.unwrap().call("a");
        let serve = async {
            let (request, respond) = handle.next_request().await.unwrap();
            assert_eq!(request, "a");
            respond.send_response(7);
        };
        let (ok, ()) = tokio::join!(ok, serve);
        assert_eq!(ok.unwrap(), 7);

        let failed = service.ready().await.unwrap().call("b");
        let serve = async {
            let (_, respond) = handle.next_request().await.unwrap();
            respond.send_error(io::Error::from(io::ErrorKind::ConnectionReset));
        };
        let (failed, ()) = tokio::join!(failed, serve);
        let error = failed.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Reconnect);
        assert_eq!(error.phase(), Phase::Unknown);
        assert!(error.find::<io::Error>().is_some());
    }

    #[tokio::test]
    async fn readiness_errors_are_classified_too() {
        let (mock, mut handle) = mock::pair::<(), ()>();
        let mut service = ClassifyLayer::new().layer(mock);
        handle.send_error(io::Error::from(io::ErrorKind::InvalidInput));
        let error = service.ready().await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Fatal);
    }

    #[tokio::test]
    async fn an_error_classified_below_is_trusted_as_it_is() {
        let (mock, mut handle) = mock::pair::<(), ()>();
        let always_conflict = |_: &(dyn std::error::Error + 'static)| ErrorClass::Conflict;
        let mut service = ClassifyLayer::new().classifier(always_conflict).layer(mock);
        handle.allow(1);
        let call = service.ready().await.unwrap().call(());
        let serve = async {
            let (_, respond) = handle.next_request().await.unwrap();
            respond.send_error(Error::new(ErrorClass::Fatal, Phase::Commit, "inner"));
        };
        let (result, ()) = tokio::join!(call, serve);
        let error = result.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Fatal, "classified once, below");
        assert_eq!(error.phase(), Phase::Commit, "the inner error's phase is kept");
    }
}
