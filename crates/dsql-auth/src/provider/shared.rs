use std::fmt;
use std::sync::Arc;

use super::{BoxFuture, TokenProvider};
use crate::{AuthToken, TokenError, TokenScope};

/// The object-safe form of [`TokenProvider`], implemented for every
/// provider. Use it through [`SharedTokenProvider`], or directly as a trait
/// object:
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, SystemTime};
/// use dsql_auth::provider::DynTokenProvider;
/// use dsql_auth::{AuthToken, StaticProvider};
///
/// let now = SystemTime::now();
/// let providers: Vec<Arc<dyn DynTokenProvider>> = vec![
///     Arc::new(StaticProvider::new(AuthToken::new("a", now, now + Duration::from_secs(60)))),
///     Arc::new(StaticProvider::new(AuthToken::new("b", now, now + Duration::from_secs(60)))),
/// ];
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let token = providers[1].token_boxed().await.unwrap();
/// assert_eq!(token.expose_secret(), "b");
/// # });
/// ```
pub trait DynTokenProvider: Send + Sync {
    /// See [`TokenProvider::token`].
    fn token_boxed(&self) -> BoxFuture<'_, Result<AuthToken, TokenError>>;

    /// See [`TokenProvider::invalidate`].
    fn invalidate_dyn(&self, rejected: &AuthToken);

    /// See [`TokenProvider::scope`]. Provided (`None`) so that implementations
    /// written before it keep compiling; every [`TokenProvider`] forwards its
    /// own.
    fn scope_dyn(&self) -> Option<TokenScope> {
        None
    }
}

impl<P: TokenProvider> DynTokenProvider for P {
    fn token_boxed(&self) -> BoxFuture<'_, Result<AuthToken, TokenError>> {
        Box::pin(self.token())
    }

    fn invalidate_dyn(&self, rejected: &AuthToken) {
        self.invalidate(rejected);
    }

    fn scope_dyn(&self) -> Option<TokenScope> {
        self.scope()
    }
}

/// A clonable, type-erased [`TokenProvider`]: `Arc<dyn DynTokenProvider>`.
///
/// ```
/// use dsql_auth::{AuthToken, SharedTokenProvider, StaticProvider, TokenProvider};
/// use std::time::{Duration, SystemTime};
///
/// let now = SystemTime::now();
/// let provider = SharedTokenProvider::new(StaticProvider::new(AuthToken::new(
///     "t",
///     now,
///     now + Duration::from_secs(60),
/// )));
/// let for_another_task = provider.clone();
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async move {
/// assert_eq!(for_another_task.token().await.unwrap().expose_secret(), "t");
/// # });
/// ```
#[derive(Clone)]
pub struct SharedTokenProvider {
    inner: Arc<dyn DynTokenProvider>,
}

impl SharedTokenProvider {
    /// Erases the type of `provider`.
    pub fn new(provider: impl TokenProvider + 'static) -> Self {
        Self {
            inner: Arc::new(provider),
        }
    }

    /// Shares an already type-erased provider.
    pub fn from_arc(inner: Arc<dyn DynTokenProvider>) -> Self {
        Self { inner }
    }
}

impl fmt::Debug for SharedTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedTokenProvider").finish_non_exhaustive()
    }
}

impl TokenProvider for SharedTokenProvider {
    fn token(&self) -> impl Future<Output = Result<AuthToken, TokenError>> + Send {
        self.inner.token_boxed()
    }

    fn invalidate(&self, rejected: &AuthToken) {
        self.inner.invalidate_dyn(rejected);
    }

    fn scope(&self) -> Option<TokenScope> {
        self.inner.scope_dyn()
    }
}
