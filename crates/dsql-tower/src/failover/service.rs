//! [`Failover`]: the connect service over an endpoint set.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tower::Service;

use super::EndpointSnapshot;
use super::set::{EndpointSet, is_region_failure};
use crate::classify::ErrorClass;
use crate::connect::{ConnectService, PgConnection};
use crate::error::{BoxError, Error, Phase};
use crate::operation::BoxFuture;

/// A connect service over the endpoints of a multi-region cluster, in order
/// of preference (the local region first), each with its own connect
/// service (its own tokens: a token is bound to one endpoint host).
///
/// Each connect goes to the most preferred endpoint that serves
/// ([`HealthPolicy`](super::HealthPolicy) says when one does not); a connect
/// that fails as an unreachable region's does moves on to the next endpoint
/// at once, while other failures (a refused role, throttling) are returned
/// as they are. Connections carry their endpoint: the lifecycle (sessions
/// and pools) reports their outcomes to it and retires them when it is
/// declared unhealthy, or when a preferred endpoint recovers (one at a
/// time, over the failback ramp).
///
/// The `tokio_postgres::Config` a call is given is ignored: each endpoint
/// connects with its own.
///
/// Build it with [`FailoverBuilder`](super::FailoverBuilder).
pub struct Failover<S> {
    set: Arc<EndpointSet<S>>,
}

impl<S> Clone for Failover<S> {
    fn clone(&self) -> Self {
        Self {
            set: Arc::clone(&self.set),
        }
    }
}

impl<S> Failover<S> {
    pub(crate) fn new(set: Arc<EndpointSet<S>>) -> Self {
        Self { set }
    }

    /// Each endpoint's state and counters, in order of preference.
    pub fn endpoints(&self) -> Vec<EndpointSnapshot> {
        self.set.snapshot()
    }
}

impl<S> fmt::Debug for Failover<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<&str> = self.set.endpoints.iter().map(|e| e.host.as_str()).collect();
        f.debug_struct("Failover")
            .field("endpoints", &hosts)
            .field("policy", &self.set.policy)
            .field("probe", &self.set.probe)
            .finish_non_exhaustive()
    }
}

impl<S: ConnectService> Service<tokio_postgres::Config> for Failover<S> {
    type Response = PgConnection;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<PgConnection, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each endpoint's service is made ready in `call`: readiness of one
        // must not hold back connects to another.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tokio_postgres::Config) -> Self::Future {
        let set = Arc::clone(&self.set);
        Box::pin(async move {
            set.start_due_probes(Instant::now());
            let mut tried = Vec::with_capacity(set.endpoints.len());
            let mut last = None;
            while let Some(endpoint) = set.select(Instant::now(), &tried) {
                tried.push(endpoint);
                match set.connect(endpoint).await {
                    Ok(pg) => return Ok(pg),
                    Err((class, error)) => {
                        let error = Error::new(class, Phase::Connect, error);
                        if !is_region_failure(class) {
                            return Err(error.into());
                        }
                        tracing::debug!(
                            endpoint = %set.endpoints[endpoint].host,
                            error = %error.report(),
                            "connect failed; trying the next endpoint"
                        );
                        last = Some(error);
                    }
                }
            }
            Err(last
                .unwrap_or_else(|| Error::new(ErrorClass::Fatal, Phase::Connect, "no endpoint to connect to"))
                .into())
        })
    }
}
