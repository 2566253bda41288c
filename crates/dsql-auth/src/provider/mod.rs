//! Token providers: anything that can produce an [`AuthToken`].
//!
//! - [`SigningProvider`](crate::SigningProvider) signs tokens with AWS
//!   credentials (feature `aws`);
//! - [`CachingProvider`] wraps any provider, refreshing ahead of expiry with a
//!   single in-flight refresh;
//! - [`StaticProvider`] always returns the same token;
//! - [`from_fn`] adapts a closure (a vault client, a test double).
//!
//! Every provider can be type-erased into a [`SharedTokenProvider`].

mod caching;
mod error;
mod shared;
mod static_provider;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use caching::{CachingProvider, CachingProviderBuilder, InvalidCacheSettings};
pub use error::TokenError;
pub use shared::{DynTokenProvider, SharedTokenProvider};
pub use static_provider::StaticProvider;

use crate::{AuthToken, TokenScope};

/// A boxed, sendable future, as returned by [`DynTokenProvider`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Produces DSQL authentication tokens.
///
/// Implement it to plug your own credential source under the connect stack;
/// use [`SharedTokenProvider`] where a type-erased, clonable provider is
/// needed.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use dsql_auth::{AuthToken, TokenError, TokenProvider};
///
/// #[derive(Debug)]
/// struct Vault;
///
/// impl TokenProvider for Vault {
///     async fn token(&self) -> Result<AuthToken, TokenError> {
///         let now = SystemTime::now();
///         Ok(AuthToken::new("from-the-vault", now, now + Duration::from_secs(300)))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), TokenError> {
/// let token = Vault.token().await?;
/// assert_eq!(token.expose_secret(), "from-the-vault");
/// # Ok(())
/// # }
/// ```
pub trait TokenProvider: Send + Sync {
    /// A token that is valid now.
    fn token(&self) -> impl Future<Output = Result<AuthToken, TokenError>> + Send;

    /// Tells the provider that the server refused `rejected`, so a cached copy
    /// must not be handed out again. Providers that cache clear their copy only
    /// if it is still `rejected`, so many connections failing with the same
    /// token cause one refresh, not one each. The default does nothing.
    fn invalidate(&self, rejected: &AuthToken) {
        let _ = rejected;
    }

    /// The (host, user) this provider signs for, when it knows; static and
    /// closure providers cannot know, and return `None` (the default).
    ///
    /// A connect stack compares it with its own configuration's
    /// [`TokenScope::of`] and fails with [`TokenError::WrongScope`] on a
    /// mismatch, instead of sending tokens the server must refuse.
    fn scope(&self) -> Option<TokenScope> {
        None
    }
}

impl<P: TokenProvider + ?Sized> TokenProvider for Arc<P> {
    fn token(&self) -> impl Future<Output = Result<AuthToken, TokenError>> + Send {
        (**self).token()
    }

    fn invalidate(&self, rejected: &AuthToken) {
        (**self).invalidate(rejected);
    }

    fn scope(&self) -> Option<TokenScope> {
        (**self).scope()
    }
}

impl<P: TokenProvider + ?Sized> TokenProvider for &P {
    fn token(&self) -> impl Future<Output = Result<AuthToken, TokenError>> + Send {
        (**self).token()
    }

    fn invalidate(&self, rejected: &AuthToken) {
        (**self).invalidate(rejected);
    }

    fn scope(&self) -> Option<TokenScope> {
        (**self).scope()
    }
}

/// A provider that calls `f` for every token.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use dsql_auth::{provider, AuthToken, TokenError, TokenProvider};
///
/// let provider = provider::from_fn(|| async {
///     let now = SystemTime::now();
///     Ok::<_, TokenError>(AuthToken::new("t", now, now + Duration::from_secs(60)))
/// });
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert_eq!(provider.token().await.unwrap().expose_secret(), "t");
/// # });
/// ```
pub fn from_fn<F, Fut>(f: F) -> FnProvider<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<AuthToken, TokenError>> + Send,
{
    FnProvider { f }
}

/// A [`TokenProvider`] made from a closure by [`from_fn`].
#[derive(Clone)]
pub struct FnProvider<F> {
    f: F,
}

impl<F> std::fmt::Debug for FnProvider<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnProvider").finish_non_exhaustive()
    }
}

impl<F, Fut> TokenProvider for FnProvider<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<AuthToken, TokenError>> + Send,
{
    fn token(&self) -> impl Future<Output = Result<AuthToken, TokenError>> + Send {
        (self.f)()
    }
}
