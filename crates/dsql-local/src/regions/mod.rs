//! A multi-region cluster: one [`DsqlLocal`](crate::DsqlLocal) per region
//! over one PostgreSQL.
//!
//! DSQL's multi-region clusters are two peered clusters in two regions
//! (and a witness region without an endpoint): each peer has its own
//! cluster id and endpoint host `<cluster-id>.dsql.<region>.on.aws`, both
//! serve strongly consistent reads and writes over one logical database,
//! and a token is signed for one peer's host and region. Here each region
//! is a `DsqlLocal` of its own (listener, endpoint host, server
//! certificate, signing region, [`Faults`](crate::Faults) and
//! [`Stats`](crate::Stats)), all with one CA, one access key table and the
//! same upstream database, which is what makes them one cluster.
//!
//! - [`builder`]: [`RegionsBuilder`], the regions over one base
//!   configuration;
//! - [`handle`]: [`Regions`], the running endpoints, how clients reach
//!   them, and shutdown;
//! - [`url`]: the libpq multi-host connection URL.

mod builder;
mod handle;
mod url;

pub use self::builder::RegionsBuilder;
pub use self::handle::Regions;
