//! What `dsqlctl local` serves: one endpoint, or one per region
//! (`--regions`).

use dsql_local::{DsqlLocal, Regions, Stats};

use super::log_stats;

/// The running endpoints.
pub(super) enum Served {
    One(DsqlLocal),
    Regions(Regions),
}

impl Served {
    /// Every endpoint, the local region's first.
    pub(super) fn endpoints(&self) -> Vec<&DsqlLocal> {
        match self {
            Self::One(local) => vec![local],
            Self::Regions(regions) => regions.iter().collect(),
        }
    }

    /// Each endpoint's counters, with its region when there are several.
    pub(super) fn stats(&self) -> Vec<(Option<String>, Stats)> {
        let several = matches!(self, Self::Regions(_));
        self.endpoints()
            .into_iter()
            .map(|local| {
                let region = several.then(|| local.endpoint().region().to_owned());
                (region, local.stats())
            })
            .collect()
    }

    /// Logs every endpoint's counters.
    pub(super) fn log_stats(&self, message: &str) {
        for (region, stats) in self.stats() {
            log_stats(&stats.snapshot(), message, region.as_deref());
        }
    }

    /// Stops every endpoint.
    pub(super) async fn shutdown(self) {
        match self {
            Self::One(local) => local.shutdown().await,
            Self::Regions(regions) => regions.shutdown().await,
        }
    }
}
