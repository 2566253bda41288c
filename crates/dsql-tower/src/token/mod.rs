//! Token injection: a fresh (or cached) token as the password of each connect.

mod layer;

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll};

use dsql_auth::{TokenError, TokenProvider, TokenScope};
use tower::Service;

pub use self::layer::TokenLayer;
use crate::classify::{Classify, ErrorClass, SharedClassifier};

/// Connect options that can take a password: the seam between a
/// [`TokenProvider`] and any driver.
///
/// Implemented for `tokio_postgres::Config`; implement it for another
/// driver's options to put [`TokenLayer`] in front of its connector.
///
/// ```
/// use dsql_tower::SetPassword;
///
/// #[derive(Clone, Default)]
/// struct MyDriverOptions {
///     password: Option<String>,
/// }
///
/// impl SetPassword for MyDriverOptions {
///     fn set_password(&mut self, password: &str) {
///         self.password = Some(password.to_owned());
///     }
/// }
///
/// let mut options = MyDriverOptions::default();
/// options.set_password("token");
/// assert_eq!(options.password.as_deref(), Some("token"));
/// ```
pub trait SetPassword {
    /// Sets the password for the next connect.
    fn set_password(&mut self, password: &str);

    /// The (host, user) this connect is for, when the options know it; a
    /// token for another scope is then refused before it is sent.
    fn scope(&self) -> Option<TokenScope> {
        None
    }
}

impl SetPassword for tokio_postgres::Config {
    fn set_password(&mut self, password: &str) {
        self.password(password);
    }

    fn scope(&self) -> Option<TokenScope> {
        let host = self.get_hosts().iter().find_map(|host| match host {
            tokio_postgres::config::Host::Tcp(host) => Some(host),
            _ => None,
        })?;
        Some(TokenScope::new(host.as_str(), self.get_user()?))
    }
}

/// The service made by [`TokenLayer`]: before each connect, asks the
/// provider for a token and sets it as the password; when the server refuses
/// it ([`ErrorClass::Reauthenticate`]), tells the provider to drop it.
///
/// The inner service's error type must accept a [`TokenError`] (`From`), so
/// a failure to get a token surfaces as a connect error. When both the
/// provider and the connect options know their (host, user) and they differ,
/// the connect fails with [`TokenError::WrongScope`] and no token is sent.
#[derive(Clone)]
pub struct TokenService<S, P> {
    inner: S,
    provider: P,
    classifier: SharedClassifier,
}

impl<S, P> TokenService<S, P> {
    /// Wraps `inner`.
    pub fn new(inner: S, provider: P, classifier: SharedClassifier) -> Self {
        Self {
            inner,
            provider,
            classifier,
        }
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

    /// The token provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }
}

impl<S: fmt::Debug, P: fmt::Debug> fmt::Debug for TokenService<S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("inner", &self.inner)
            .field("provider", &self.provider)
            .field("classifier", &self.classifier)
            .finish()
    }
}

/// The future of [`TokenService`]. Boxed: it awaits the provider, whose
/// future type cannot be named, and runs once per connect, not per query.
pub type TokenFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, P, R> Service<R> for TokenService<S, P>
where
    R: SetPassword + Send + 'static,
    S: Service<R> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: From<TokenError> + StdError + 'static,
    P: TokenProvider + Clone + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TokenFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: R) -> Self::Future {
        // The ready service goes into the future; a fresh clone stays behind
        // to be polled ready before the next call.
        let clone = self.inner.clone();
        let mut inner = mem::replace(&mut self.inner, clone);
        let provider = self.provider.clone();
        let classifier = self.classifier.clone();
        Box::pin(async move {
            if let Some(requested) = request.scope() {
                crate::connect::check_scope(&provider, &requested)?;
            }
            let token = provider.token().await?;
            request.set_password(token.expose_secret());
            let result = inner.call(request).await;
            if let Err(error) = &result
                && classifier.classify(error) == ErrorClass::Reauthenticate
            {
                tracing::info!(
                    expires_at = ?token.expires_at(),
                    "the server refused the token; asking the provider for a new one"
                );
                provider.invalidate(&token);
            }
            result
        })
    }
}

#[cfg(test)]
mod tests;
