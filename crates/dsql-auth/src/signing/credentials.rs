use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use tracing::Instrument;

use crate::TokenError;
use crate::clock::SharedClock;

/// Resolves AWS credentials once and shares them until they are close to
/// expiry. The AWS SDK's token generator resolves credentials on every call,
/// which for IMDS, ECS, SSO or STS is a network round trip per connection.
pub(crate) struct CredentialsCache {
    provider: SharedCredentialsProvider,
    clock: SharedClock,
    refresh_buffer: Duration,
    cached: Mutex<Option<Cached>>,
    // Held while resolving, so concurrent callers wait for one resolution.
    resolving: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Cached {
    credentials: Credentials,
    refresh_at: Option<SystemTime>,
}

impl CredentialsCache {
    pub(crate) fn new(
        provider: SharedCredentialsProvider,
        clock: SharedClock,
        refresh_buffer: Duration,
    ) -> Self {
        Self {
            provider,
            clock,
            refresh_buffer,
            cached: Mutex::new(None),
            resolving: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) async fn get(&self) -> Result<Credentials, TokenError> {
        if let Some(credentials) = self.fresh() {
            return Ok(credentials);
        }
        let _resolving = self.resolving.lock().await;
        if let Some(credentials) = self.fresh() {
            return Ok(credentials);
        }
        let span = tracing::debug_span!("dsql.credentials.resolve", provider = tracing::field::Empty);
        let credentials = self
            .provider
            .provide_credentials()
            .instrument(span.clone())
            .await
            .map_err(TokenError::credentials)?;
        span.record("provider", credentials_source(&credentials));
        let now = self.clock.now();
        let refresh_at = credentials.expiry().map(|expiry| {
            // Refresh `refresh_buffer` before expiry, but never later than
            // half-way through short-lived credentials, and never before now.
            let lifetime = expiry.duration_since(now).unwrap_or_default();
            // At most half of `lifetime` back from `expiry`: never before
            // `now`, so never out of range.
            expiry
                .checked_sub(self.refresh_buffer.min(lifetime / 2))
                .unwrap_or(now)
        });
        tracing::debug!(
            parent: &span,
            expires = credentials.expiry().is_some(),
            "AWS credentials resolved"
        );
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some(Cached {
            credentials: credentials.clone(),
            refresh_at,
        });
        Ok(credentials)
    }

    fn fresh(&self) -> Option<Credentials> {
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        let cached = cached.as_ref()?;
        match cached.refresh_at {
            Some(at) if self.clock.now() >= at => None,
            _ => Some(cached.credentials.clone()),
        }
    }
}

fn credentials_source(credentials: &Credentials) -> &'static str {
    // `Credentials`' Debug shows the provider name without secrets, but not
    // through a public accessor; whether they can expire is what matters.
    if credentials.expiry().is_some() {
        "expiring"
    } else {
        "static"
    }
}

impl fmt::Debug for CredentialsCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("CredentialsCache")
            .field("cached", &cached.is_some())
            .field("refresh_buffer", &self.refresh_buffer)
            .finish_non_exhaustive()
    }
}
