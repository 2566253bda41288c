//! [`Regions`]: the running regional endpoints of one cluster, how clients
//! reach them, and shutdown.

use std::fmt;
use std::path::{Path, PathBuf};

use aws_credential_types::Credentials;
use dsql_auth::DsqlConfig;

use super::RegionsBuilder;
use super::url::multi_host_url;
use crate::config::{AccessKey, LocalConfig};
use crate::error::{ConfigError, StartError};
use crate::server::DsqlLocal;
use crate::tls;

/// The regional endpoints of one multi-region cluster, over one
/// PostgreSQL: the local (preferred) region first, then its peers. Each is
/// a [`DsqlLocal`] with its own endpoint host, port, certificate, signing
/// region, [`Faults`](crate::Faults) and [`Stats`](crate::Stats); they
/// share one CA ([`ca_pem`](Self::ca_pem)), one access key and the
/// upstream database. A token is signed for one region's host and region:
/// the others refuse it (and count it in
/// [`StatsSnapshot::tokens_for_other_host`](crate::StatsSnapshot::tokens_for_other_host)).
///
/// ```no_run
/// use dsql_local::Regions;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let regions = Regions::builder().regions(["us-east-1", "us-east-2"]).start().await?;
/// // One client configuration per region, the local one first.
/// let configs = regions.client_configs("admin")?;
/// // postgres://admin@<host 1>:<port 1>,<host 2>:<port 2>/postgres?hostaddr=…&sslrootcert=…
/// let url = regions.connection_url("admin");
/// // us-east-2 loses its peers: connects refused, sessions cut, commits failed.
/// if let Some(east2) = regions.region("us-east-2") {
///     east2.faults().isolate();
/// }
/// # let _ = (configs, url);
/// regions.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct Regions {
    local: DsqlLocal,
    peers: Vec<DsqlLocal>,
    ca_pem: String,
    ca_path: PathBuf,
    /// Removes the shared CA's temporary directory once the endpoints are
    /// gone.
    _ca_dir: CaDir,
}

/// A shared CA's temporary directory, removed on drop.
struct CaDir(Option<PathBuf>);

impl Drop for CaDir {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Regions {
    /// A builder over DSQL's defaults; see [`RegionsBuilder::new`] to start
    /// from a base configuration.
    pub fn builder() -> RegionsBuilder {
        RegionsBuilder::new(LocalConfig::builder())
    }

    /// The endpoints, local first, and the CA they share (which owns its
    /// temporary directory from now on).
    pub(super) fn new(endpoints: Vec<DsqlLocal>, ca: tls::Ca) -> Result<Self, StartError> {
        let ca_dir = CaDir(ca.temp_dir);
        let mut endpoints = endpoints.into_iter();
        let Some(local) = endpoints.next() else {
            return Err(ConfigError::invalid("regions", "no region").into());
        };
        Ok(Self {
            local,
            peers: endpoints.collect(),
            ca_pem: ca.pem,
            ca_path: ca.path,
            _ca_dir: ca_dir,
        })
    }

    /// The local region's endpoint: the first one given.
    pub fn local(&self) -> &DsqlLocal {
        &self.local
    }

    /// The other regions' endpoints, in order.
    pub fn peers(&self) -> &[DsqlLocal] {
        &self.peers
    }

    /// Every endpoint, the local one first.
    pub fn iter(&self) -> impl Iterator<Item = &DsqlLocal> + Clone {
        std::iter::once(&self.local).chain(&self.peers)
    }

    /// The endpoint of `region` (`us-east-1`; any case), if it is one of
    /// them.
    pub fn region(&self, region: &str) -> Option<&DsqlLocal> {
        self.iter()
            .find(|local| local.endpoint().region().eq_ignore_ascii_case(region.trim()))
    }

    /// The CA certificate every endpoint's certificate chains to,
    /// PEM-encoded.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The file holding [`ca_pem`](Self::ca_pem), for `sslrootcert`.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The access key tokens can be signed with, for every region.
    pub fn access_key(&self) -> &AccessKey {
        self.local.access_key()
    }

    /// [`access_key`](Self::access_key) as AWS credentials.
    pub fn credentials(&self) -> Credentials {
        self.local.credentials()
    }

    /// One client configuration per region, the local one first, each as
    /// [`DsqlLocal::client_config`] makes it (its own host, port, region,
    /// `hostaddr` and the shared CA as `sslrootcert`).
    pub fn client_configs(&self, user: &str) -> Result<Vec<DsqlConfig>, dsql_auth::ConfigError> {
        self.iter().map(|local| local.client_config(user)).collect()
    }

    /// A libpq multi-host connection URL for `user`, the local region
    /// first:
    /// `postgres://<user>@<host>:<port>,<host>:<port>/postgres?hostaddr=<ip>,<ip>&sslrootcert=<ca>`,
    /// with [`DsqlLocal::connection_url`]'s parameters but `region` (each
    /// DSQL host name carries its own). `dsql_auth::ClusterSet::from_url`
    /// reads it as [`client_configs`](Self::client_configs).
    pub fn connection_url(&self, user: &str) -> String {
        multi_host_url(self.iter(), user, &self.ca_path.to_string_lossy())
    }

    /// Stops every endpoint, as [`DsqlLocal::shutdown`] does, then removes
    /// the temporary CA.
    pub async fn shutdown(self) {
        let Self {
            local,
            peers,
            _ca_dir: ca_dir,
            ..
        } = self;
        local.shutdown().await;
        for peer in peers {
            peer.shutdown().await;
        }
        drop(ca_dir);
    }
}

impl fmt::Debug for Regions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Regions")
            .field("endpoints", &self.iter().collect::<Vec<_>>())
            .field("ca_path", &self.ca_path)
            .finish()
    }
}
