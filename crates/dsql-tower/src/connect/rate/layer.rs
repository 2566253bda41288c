use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use super::ConnectRateLimit;

/// Paces the connects that pass through with a [`ConnectRateLimit`].
#[derive(Clone, Debug)]
pub struct ConnectRateLimitLayer {
    limit: Arc<ConnectRateLimit>,
}

impl ConnectRateLimitLayer {
    /// Paces with `limit`.
    pub fn new(limit: Arc<ConnectRateLimit>) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for ConnectRateLimitLayer {
    type Service = RateLimitedConnect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitedConnect::with_limit(inner, Some(Arc::clone(&self.limit)))
    }
}

/// The service made by [`ConnectRateLimitLayer`]: waits for a slot, then
/// connects.
#[derive(Clone)]
pub struct RateLimitedConnect<S> {
    inner: S,
    limit: Option<Arc<ConnectRateLimit>>,
}

impl<S> RateLimitedConnect<S> {
    pub(crate) fn with_limit(inner: S, limit: Option<Arc<ConnectRateLimit>>) -> Self {
        Self { inner, limit }
    }

    /// The limiter, if connects are paced.
    pub fn limit(&self) -> Option<&Arc<ConnectRateLimit>> {
        self.limit.as_ref()
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

impl<S: fmt::Debug> fmt::Debug for RateLimitedConnect<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitedConnect")
            .field("inner", &self.inner)
            .field("per_second", &self.limit.as_ref().map(|limit| limit.per_second()))
            .finish()
    }
}

impl<S, R> Service<R> for RateLimitedConnect<S>
where
    S: Service<R> + Clone + Send + 'static,
    S::Future: Send,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        // The ready service goes into the future; a fresh clone stays behind
        // to be polled ready before the next call.
        let clone = self.inner.clone();
        let mut inner = mem::replace(&mut self.inner, clone);
        let limit = self.limit.clone();
        Box::pin(async move {
            if let Some(limit) = limit {
                limit.acquire().await;
            }
            inner.call(request).await
        })
    }
}
