//! [`RegionsBuilder`]: the regions of a multi-region cluster, each with
//! its own cluster id, over one base configuration.

use std::collections::HashSet;
use std::net::SocketAddr;

use dsql_auth::Endpoint;

use super::Regions;
use crate::config::{LocalConfig, LocalConfigBuilder};
use crate::error::{ConfigError, StartError};
use crate::server::DsqlLocal;
use crate::tls;

/// One region's peer.
#[derive(Clone, Debug)]
struct Peer {
    region: String,
    /// `None`: one made from the peer's place in the list.
    cluster_id: Option<String>,
}

/// Builds [`Regions`]: one [`DsqlLocal`] per region, the local (preferred)
/// one first, each from the same base configuration.
///
/// Every setting of the base applies to each region (upstream, access
/// keys, limits, dialect, extra server names, CA directory) except what
/// makes a peer itself: its endpoint host (its cluster id in its region),
/// its region, and its port. With a base listen port of 0 (the default)
/// each region gets a free port; with port `p`, the regions get `p`,
/// `p + 1`, … in order.
///
/// ```no_run
/// use dsql_local::{DsqlLocal, RegionsBuilder};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let base = DsqlLocal::builder().upstream("postgres://postgres@127.0.0.1:5432/postgres");
/// let regions = RegionsBuilder::new(base)
///     .region("us-east-1")
///     .peer("us-east-2", "abcdefghijklmnopqrstuvwxyz")
///     .start()
///     .await?;
/// assert_eq!(regions.local().endpoint().region(), "us-east-1");
/// # regions.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RegionsBuilder {
    base: LocalConfigBuilder,
    peers: Vec<Peer>,
}

impl RegionsBuilder {
    /// The regions share `base`'s settings; add them with
    /// [`region`](Self::region) or [`peer`](Self::peer), the local one
    /// first.
    pub fn new(base: LocalConfigBuilder) -> Self {
        Self {
            base,
            peers: Vec::new(),
        }
    }

    /// Adds a region, its cluster id made from its place:
    /// `dsqllocalpeer0000000000001` for the first, and so on.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.peers.push(Peer {
            region: region.into(),
            cluster_id: None,
        });
        self
    }

    /// Adds a region with this cluster id (26 lowercase letters and
    /// digits): its endpoint host is `<cluster_id>.dsql.<region>.on.aws`.
    pub fn peer(mut self, region: impl Into<String>, cluster_id: impl Into<String>) -> Self {
        self.peers.push(Peer {
            region: region.into(),
            cluster_id: Some(cluster_id.into()),
        });
        self
    }

    /// Adds these regions, as [`region`](Self::region) does, in order.
    pub fn regions<I, S>(self, regions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        regions.into_iter().fold(self, Self::region)
    }

    /// Validates the settings: one configuration per region, in order.
    /// Refused: no region, a region twice (DSQL's peers are in different
    /// regions), a cluster id twice, an invalid region or cluster id, a
    /// port past 65535, and whatever the base's
    /// [`build`](LocalConfigBuilder::build) refuses.
    pub fn build(&self) -> Result<Vec<LocalConfig>, ConfigError> {
        if self.peers.is_empty() {
            return Err(ConfigError::invalid(
                "regions",
                "no region: add them with RegionsBuilder::region",
            ));
        }
        let listen = self.base.clone().build()?.listen();
        let mut regions = HashSet::new();
        let mut ids = HashSet::new();
        let mut configs = Vec::with_capacity(self.peers.len());
        for (index, peer) in (0_u16..).zip(&self.peers) {
            let id = peer
                .cluster_id
                .clone()
                .unwrap_or_else(|| format!("dsqllocalpeer{:013}", u32::from(index) + 1));
            let endpoint = Endpoint::cluster(&id, &peer.region)?;
            if !regions.insert(endpoint.region().to_owned()) {
                return Err(ConfigError::invalid(
                    "regions",
                    format!(
                        "{} is given twice: a multi-region cluster has one peer per region",
                        endpoint.region()
                    ),
                ));
            }
            if !ids.insert(id.to_ascii_lowercase()) {
                return Err(ConfigError::invalid(
                    "regions",
                    format!("cluster id {id} is given twice: each peer has its own"),
                ));
            }
            let port = match listen.port() {
                0 => Some(0),
                port => port.checked_add(index),
            };
            let Some(port) = port else {
                return Err(ConfigError::invalid(
                    "listen",
                    format!(
                        "the regions need {} ports from {}",
                        self.peers.len(),
                        listen.port()
                    ),
                ));
            };
            let config = self
                .base
                .clone()
                .listen(SocketAddr::new(listen.ip(), port))
                .endpoint_host(endpoint.host())
                .region(endpoint.region())
                .build()?;
            configs.push(config);
        }
        Ok(configs)
    }

    /// Validates the settings, makes one CA for every region, and starts
    /// each region's endpoint (if one cannot start, those started are shut
    /// down).
    pub async fn start(self) -> Result<Regions, StartError> {
        let configs = self.build()?;
        let mut names: Vec<String> = Vec::new();
        for name in configs.iter().flat_map(tls::names) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let ca_dir = configs.first().and_then(LocalConfig::ca_dir);
        let ca = tls::Ca::new(ca_dir, &names)?;
        let mut started = Vec::with_capacity(configs.len());
        for config in configs {
            match DsqlLocal::start_with_ca(config, Some(&ca)).await {
                Ok(local) => started.push(local),
                Err(error) => {
                    for local in started {
                        local.shutdown().await;
                    }
                    ca.remove_temp_dir();
                    return Err(error);
                }
            }
        }
        Regions::new(started, ca)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(builder: &RegionsBuilder) -> Result<Vec<String>, String> {
        builder
            .build()
            .map(|configs| configs.iter().map(|c| c.endpoint().host().to_owned()).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_region_gets_its_own_host_and_region() {
        let builder = Regions::builder().region("us-east-1").region("us-east-2");
        assert_eq!(
            hosts(&builder),
            Ok(vec![
                "dsqllocalpeer0000000000001.dsql.us-east-1.on.aws".to_owned(),
                "dsqllocalpeer0000000000002.dsql.us-east-2.on.aws".to_owned(),
            ])
        );
        let configs = builder.build().expect("valid");
        assert_eq!(configs[1].endpoint().region(), "us-east-2");
        assert!(configs.iter().all(|c| c.listen().port() == 0));
        // The base's own endpoint and region give way to each peer's.
        let base = LocalConfig::builder()
            .endpoint_host("localhost")
            .region("eu-west-1")
            .listen("127.0.0.1:15432".parse().expect("address"));
        let configs = RegionsBuilder::new(base)
            .peer("eu-west-1", "abcdefghijklmnopqrstuvwxyz")
            .region("eu-west-2")
            .build()
            .expect("valid");
        assert_eq!(
            configs[0].endpoint().host(),
            "abcdefghijklmnopqrstuvwxyz.dsql.eu-west-1.on.aws"
        );
        assert_eq!(
            configs.iter().map(|c| c.listen().port()).collect::<Vec<_>>(),
            [15432, 15433]
        );
    }

    #[test]
    fn bad_region_lists_are_refused() {
        for (builder, expected) in [
            (Regions::builder(), "no region"),
            (
                Regions::builder().region("us-east-1").region("US-EAST-1"),
                "us-east-1 is given twice",
            ),
            (
                Regions::builder()
                    .peer("us-east-1", "abcdefghijklmnopqrstuvwxyz")
                    .peer("us-east-2", "abcdefghijklmnopqrstuvwxyz"),
                "cluster id abcdefghijklmnopqrstuvwxyz is given twice",
            ),
            (Regions::builder().region("nowhere"), "region"),
            (Regions::builder().peer("us-east-1", "short"), "cluster"),
        ] {
            let error = hosts(&builder).expect_err(expected);
            assert!(error.contains(expected), "{error}");
        }
        let high = LocalConfig::builder().listen("127.0.0.1:65535".parse().expect("address"));
        let error = hosts(&RegionsBuilder::new(high).region("us-east-1").region("us-east-2"))
            .expect_err("no port after 65535");
        assert!(error.contains("2 ports from 65535"), "{error}");
    }

    #[test]
    fn starting_can_be_spawned() {
        fn send<T: Send>(_: &T) {}
        let start = Regions::builder().region("us-east-1").start();
        send(&start);
    }
}
