use tower::Service;

use super::PgConnection;
use crate::error::BoxError;

/// What a [`Session`](crate::Session) or a pool connects with: a clonable
/// `Service<tokio_postgres::Config>` returning a [`PgConnection`], such as
/// [`ConnectStack`](super::ConnectStack) or your own stack around
/// [`Connector`](super::Connector). Implemented for every such service.
///
/// ```no_run
/// use std::time::Duration;
/// use dsql_auth::{DsqlConfig, SharedTokenProvider};
/// use dsql_tower::connect::{self, ConnectService};
/// use tower::ServiceBuilder;
///
/// /// The standard stack with a layer of your own is still a connect service.
/// fn with_deadline(connect: impl ConnectService) -> impl ConnectService {
///     ServiceBuilder::new().timeout(Duration::from_secs(3)).service(connect)
/// }
///
/// # fn example(config: DsqlConfig, tokens: SharedTokenProvider) -> Result<(), dsql_tower::ConnectError> {
/// let session = dsql_tower::Session::new(
///     with_deadline(connect::stack(&config, tokens)?),
///     connect::pg_config(&config),
/// );
/// # let _ = session;
/// # Ok(())
/// # }
/// ```
pub trait ConnectService:
    Service<tokio_postgres::Config, Response = PgConnection, Error: Into<BoxError>, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> ConnectService for S
where
    S: Service<tokio_postgres::Config, Response = PgConnection> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
}
