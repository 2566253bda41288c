use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use super::{ConnectRateLimit, InvalidConnectRate};

/// Two users of one endpoint in one process asked for different connect
/// rates: one limiter must serve both, so the settings must agree.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitConflict {
    /// The settings themselves are invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidConnectRate),
    /// The endpoint's limiter already runs with other settings.
    #[error(
        "the connect rate limit of {endpoint} is already {existing_per_second}/s burst {existing_burst} in this \
         process; asked for {per_second}/s burst {burst}: give every pool of an endpoint the same rate, or share \
         one `ConnectRateLimit`"
    )]
    Differs {
        /// The endpoint host.
        endpoint: String,
        /// The rate in force.
        existing_per_second: f64,
        /// The burst in force.
        existing_burst: u32,
        /// The rate asked for.
        per_second: f64,
        /// The burst asked for.
        burst: u32,
    },
}

impl ConnectRateLimit {
    /// The limiter of `endpoint` in this process: made with these settings
    /// by its first user, shared by the others, who must ask for the same
    /// settings.
    pub fn shared(endpoint: &str, per_second: f64, burst: u32) -> Result<Arc<Self>, RateLimitConflict> {
        static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<ConnectRateLimit>>>> = OnceLock::new();
        #[cfg_attr(not(feature = "metrics"), expect(unused_mut))]
        let mut limiter = Self::new(per_second, burst)?;
        let key = endpoint.to_ascii_lowercase();
        #[cfg(feature = "metrics")]
        {
            limiter.endpoint = Some(key.as_str().into());
        }
        let mut registry = REGISTRY
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        registry.retain(|_, limiter| limiter.strong_count() > 0);
        if let Some(existing) = registry.get(&key).and_then(Weak::upgrade) {
            if existing.per_second != per_second || existing.burst != burst {
                return Err(RateLimitConflict::Differs {
                    endpoint: key,
                    existing_per_second: existing.per_second,
                    existing_burst: existing.burst,
                    per_second,
                    burst,
                });
            }
            return Ok(existing);
        }
        let limiter = Arc::new(limiter);
        registry.insert(key, Arc::downgrade(&limiter));
        Ok(limiter)
    }
}
