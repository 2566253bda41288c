//! [`FailoverBuilder`]: endpoints in order of preference, the breaker's
//! policy, the probe, the classifier.

use std::time::Duration;

use dsql_auth::{ClusterSet, DsqlConfig, TokenProvider};

use super::set::{Endpoint, EndpointSet};
use super::{Failover, HealthPolicy, Probe};
use crate::classify::ErrorClass;
use crate::classify::{Classify, SharedClassifier};
use crate::connect::{ConnectError, ConnectService, ConnectStack, StackBuilder, pg_config};
use crate::retry::{Backoff, RetryPolicy, RetryRule};

/// Why a [`Failover`] cannot be built.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidFailover {
    /// No endpoint was given.
    #[error("a failover needs at least one endpoint")]
    NoEndpoints,
    /// Two endpoints have the same host.
    #[error("endpoint `{host}` is given twice")]
    DuplicateHost {
        /// The host.
        host: String,
    },
}

/// Builds a [`Failover`]: endpoints in order of preference, each with its
/// own connect service.
///
/// ```no_run
/// use dsql_auth::{ClusterSet, SharedTokenProvider};
/// use dsql_tower::connect;
/// use dsql_tower::failover::{FailoverBuilder, HealthPolicy, Probe};
///
/// # fn example(cluster: ClusterSet, tokens_for: impl Fn(&dsql_auth::DsqlConfig) -> SharedTokenProvider)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// let mut builder = FailoverBuilder::new()
///     .policy(HealthPolicy::default())
///     .probe(Probe::heartbeat("heartbeat"));
/// for member in cluster.members() {
///     builder = builder.endpoint(member, connect::stack(member, tokens_for(member))?);
/// }
/// let failover = builder.build()?;
/// # let _ = failover;
/// # Ok(())
/// # }
/// ```
pub struct FailoverBuilder<S> {
    endpoints: Vec<Endpoint<S>>,
    policy: HealthPolicy,
    probe: Probe,
    classifier: SharedClassifier,
}

impl<S> Default for FailoverBuilder<S> {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            policy: HealthPolicy::default(),
            probe: Probe::default(),
            classifier: SharedClassifier::default(),
        }
    }
}

impl<S> std::fmt::Debug for FailoverBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<&str> = self.endpoints.iter().map(|e| e.host.as_str()).collect();
        f.debug_struct("FailoverBuilder")
            .field("endpoints", &hosts)
            .field("policy", &self.policy)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

impl<S: ConnectService> FailoverBuilder<S> {
    /// No endpoints yet; the default policy, probe and classifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next endpoint in order of preference (the local region's
    /// first), connected through `connect` with `config`'s driver settings
    /// ([`pg_config`]).
    pub fn endpoint(self, config: &DsqlConfig, connect: S) -> Self {
        self.endpoint_with(config.endpoint().host(), pg_config(config), connect)
    }

    /// The next endpoint, with its driver config given as is.
    pub fn endpoint_with(mut self, host: &str, config: tokio_postgres::Config, connect: S) -> Self {
        self.endpoints
            .push(Endpoint::new(host.to_ascii_lowercase(), config, connect));
        self
    }

    /// The breaker's settings.
    pub fn policy(mut self, policy: HealthPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// What probes run.
    pub fn probe(mut self, probe: Probe) -> Self {
        self.probe = probe;
        self
    }

    /// Which connect failures count against an endpoint (those it calls
    /// [`Reconnect`](crate::ErrorClass::Reconnect) or
    /// [`OutcomeUnknown`](crate::ErrorClass::OutcomeUnknown)); use the
    /// classifier your pool or session uses.
    pub fn classifier(mut self, classifier: impl Classify + 'static) -> Self {
        self.classifier = SharedClassifier::new(classifier);
        self
    }

    /// [`classifier`](Self::classifier), already shared.
    pub fn shared_classifier(mut self, classifier: SharedClassifier) -> Self {
        self.classifier = classifier;
        self
    }

    /// The failover.
    pub fn build(self) -> Result<Failover<S>, InvalidFailover> {
        if self.endpoints.is_empty() {
            return Err(InvalidFailover::NoEndpoints);
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            if self.endpoints[..i].iter().any(|other| other.host == e.host) {
                return Err(InvalidFailover::DuplicateHost { host: e.host.clone() });
            }
        }
        Ok(Failover::new(EndpointSet::new(
            self.endpoints,
            self.policy,
            self.probe,
            self.classifier,
        )))
    }
}

/// How each endpoint's connect stack retries in a failover: a lost or
/// refused connect is retried once, within a second, before the next
/// endpoint is tried; throttling and refused tokens as usual.
pub fn connect_retries() -> RetryPolicy {
    RetryPolicy::for_connects().rule(
        ErrorClass::Reconnect,
        Some(RetryRule::new(
            Backoff::new(Duration::from_millis(50), Duration::from_millis(250)),
            2,
            Duration::from_secs(1),
        )),
    )
}

impl<P: TokenProvider + Clone + 'static> FailoverBuilder<ConnectStack<P>> {
    /// One standard connect stack per member of `cluster`, local first: a
    /// token provider of its own (`tokens_for(member)`: a token is bound to
    /// one endpoint host), the connect rate limit shared per endpoint, and
    /// [`connect_retries`].
    ///
    /// ```no_run
    /// use dsql_auth::{CachingProvider, ClusterSet, SharedTokenProvider, SigningProvider};
    /// use dsql_tower::failover::{FailoverBuilder, Probe};
    ///
    /// # fn example(sdk: dsql_auth::aws::SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = ClusterSet::from_env()?;
    /// let failover = FailoverBuilder::for_cluster(&cluster, |member| {
    ///     SharedTokenProvider::new(CachingProvider::new(SigningProvider::from_sdk_config(member, &sdk)))
    /// })?
    /// .probe(Probe::heartbeat("heartbeat"))
    /// .build()?;
    /// # let _ = failover;
    /// # Ok(())
    /// # }
    /// ```
    pub fn for_cluster(
        cluster: &ClusterSet,
        mut tokens_for: impl FnMut(&DsqlConfig) -> P,
    ) -> Result<Self, ConnectError> {
        Self::for_cluster_with(cluster, |member| {
            StackBuilder::new(member, tokens_for(member)).connect_retries(connect_retries())
        })
    }

    /// Like [`for_cluster`](Self::for_cluster), with each member's stack
    /// as `stack_for(member)` builds it.
    pub fn for_cluster_with(
        cluster: &ClusterSet,
        mut stack_for: impl FnMut(&DsqlConfig) -> StackBuilder<P>,
    ) -> Result<Self, ConnectError> {
        let mut builder = Self::new();
        for member in cluster.members() {
            let stack = stack_for(member).build()?;
            builder = builder.endpoint(member, stack);
        }
        Ok(builder)
    }
}
