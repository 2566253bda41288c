use std::sync::Arc;

use dsql_auth::{DsqlConfig, TokenError, TokenProvider, TokenScope};

use super::rate::{ConnectRateLimit, RateLimitedConnect};
use super::{ConnectError, Connector};
use crate::classify::{Classify, SharedClassifier};
use crate::retry::RetryPolicy;
use crate::token::{TokenLayer, TokenService};

/// New connections per second, shared by every pool and session of an
/// endpoint in the process: half of DSQL's 100/s, so other clients keep room.
pub const DEFAULT_CONNECT_RATE: f64 = 50.0;

/// Connections that may open at once before [`DEFAULT_CONNECT_RATE`] applies.
pub const DEFAULT_CONNECT_BURST: u32 = 50;

/// The connect stack: connect retries (throttling, refused tokens, transient
/// I/O) around the connect rate limit (so every attempt is paced) around
/// token injection around the TLS [`Connector`].
pub type ConnectStack<P> = tower::retry::Retry<RetryPolicy, RateLimitedConnect<TokenService<Connector, P>>>;

/// Builds the [`ConnectStack`] for `config`, with tokens from `provider`,
/// DSQL's classifier and the default connect rate; see [`StackBuilder`].
///
/// Refused tokens are invalidated in the provider and retried with a new
/// one; `53300`, `53400` and `57P03` back off; a fatal refusal (the role
/// does not match the token's action) fails at once.
pub fn stack<P>(config: &DsqlConfig, provider: P) -> Result<ConnectStack<P>, ConnectError>
where
    P: TokenProvider + Clone + 'static,
{
    StackBuilder::new(config, provider).build()
}

/// Builds a [`ConnectStack`].
///
/// ```no_run
/// use dsql_auth::{DsqlConfig, SharedTokenProvider};
/// use dsql_tower::connect::StackBuilder;
///
/// # fn example(config: DsqlConfig, tokens: SharedTokenProvider) -> Result<(), dsql_tower::ConnectError> {
/// let stack = StackBuilder::new(&config, tokens).connect_rate(20.0, 10).build()?;
/// # let _ = stack;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct StackBuilder<P> {
    config: DsqlConfig,
    provider: P,
    classifier: SharedClassifier,
    rate: Rate,
    retries: RetryPolicy,
}

#[derive(Debug)]
enum Rate {
    Shared(f64, u32),
    Given(Arc<ConnectRateLimit>),
    Unlimited,
}

impl<P> StackBuilder<P>
where
    P: TokenProvider + Clone + 'static,
{
    /// A stack for `config` with tokens from `provider`.
    pub fn new(config: &DsqlConfig, provider: P) -> Self {
        Self {
            config: config.clone(),
            provider,
            classifier: SharedClassifier::default(),
            rate: Rate::Shared(DEFAULT_CONNECT_RATE, DEFAULT_CONNECT_BURST),
            retries: RetryPolicy::for_connects(),
        }
    }

    /// Classifies connect errors with `classifier` (refused tokens, retries).
    pub fn classifier(mut self, classifier: impl Classify + 'static) -> Self {
        self.classifier = SharedClassifier::new(classifier);
        self
    }

    /// Connects per second and burst, shared by every stack of the endpoint
    /// in this process (default 50/s, burst 50); stacks of one endpoint must
    /// agree, or `build` fails.
    pub fn connect_rate(mut self, per_second: f64, burst: u32) -> Self {
        self.rate = Rate::Shared(per_second, burst);
        self
    }

    /// Paces connects with `limit` (yours to share).
    pub fn rate_limit(mut self, limit: Arc<ConnectRateLimit>) -> Self {
        self.rate = Rate::Given(limit);
        self
    }

    /// How failed connects are retried (default
    /// [`RetryPolicy::for_connects`]); the stack's classifier replaces the
    /// policy's. A [`Failover`](crate::failover::Failover) wants few
    /// reconnect retries per endpoint: it tries the next endpoint instead.
    pub fn connect_retries(mut self, policy: RetryPolicy) -> Self {
        self.retries = policy;
        self
    }

    /// Connects as fast as the server lets it.
    pub fn no_rate_limit(mut self) -> Self {
        self.rate = Rate::Unlimited;
        self
    }

    /// Builds the stack. Fails if the provider signs tokens for another
    /// host or role than `config` connects to (each would be refused), on
    /// a connect rate that conflicts with the endpoint's, and on a TLS
    /// configuration that cannot be loaded.
    pub fn build(self) -> Result<ConnectStack<P>, ConnectError> {
        check_scope(&self.provider, &TokenScope::of(&self.config))?;
        let limit = match self.rate {
            Rate::Shared(per_second, burst) => Some(
                ConnectRateLimit::shared(self.config.endpoint().host(), per_second, burst)
                    .map_err(ConnectError::RateLimit)?,
            ),
            Rate::Given(limit) => Some(limit),
            Rate::Unlimited => None,
        };
        let tokens = TokenLayer::new(self.provider).shared_classifier(self.classifier.clone());
        let connect = RateLimitedConnect::with_limit(
            tower::Layer::layer(&tokens, Connector::new(&self.config)?),
            limit,
        );
        let policy = self.retries.shared_classifier(self.classifier);
        Ok(tower::retry::Retry::new(policy, connect))
    }
}

/// Fails when `provider` says it signs for another (host, user) than
/// `requested`.
pub(crate) fn check_scope<P: TokenProvider>(provider: &P, requested: &TokenScope) -> Result<(), TokenError> {
    match provider.scope() {
        Some(provider) if provider != *requested => Err(TokenError::WrongScope {
            provider,
            requested: requested.clone(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use dsql_auth::{AuthToken, TokenError, TokenProvider, TokenScope};

    use super::*;

    /// A provider that says what it signs for.
    #[derive(Clone, Debug)]
    struct Scoped(TokenScope);

    impl TokenProvider for Scoped {
        async fn token(&self) -> Result<AuthToken, TokenError> {
            unreachable!("never asked for a token")
        }

        fn scope(&self) -> Option<TokenScope> {
            Some(self.0.clone())
        }
    }

    fn config(host: &str, user: &str) -> DsqlConfig {
        DsqlConfig::builder().host(host).user(user).build().unwrap()
    }

    #[test]
    fn a_provider_for_another_host_or_user_is_refused_naming_both() {
        let config = config("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws", "admin");
        for (host, user) in [
            ("zyxwvutsrqponmlkjihgfedcba.dsql.us-east-1.on.aws", "admin"),
            ("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws", "reader"),
        ] {
            let provider = Scoped(TokenScope::new(host, user));
            let Err(error) = StackBuilder::new(&config, provider).no_rate_limit().build() else {
                panic!("{user}@{host} accepted");
            };
            let message = error.to_string();
            assert!(message.contains(&format!("{user}@{host}")), "{message}");
            assert!(
                message.contains("admin@abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"),
                "{message}"
            );
        }
        // The same scope, whatever the host's case, is accepted (up to TLS).
        let same = Scoped(TokenScope::new(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ.dsql.us-east-1.on.aws",
            "admin",
        ));
        assert!(!matches!(
            StackBuilder::new(&config, same).no_rate_limit().build(),
            Err(ConnectError::Token(_))
        ));
    }
}
