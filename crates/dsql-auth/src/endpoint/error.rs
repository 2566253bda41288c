use super::CLUSTER_ID_LEN;

/// Why a host name, cluster id or region was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The host was empty.
    #[error("the endpoint is empty: give a cluster id or a host name")]
    Empty,
    /// The host contains a character that a host name cannot hold.
    #[error("the endpoint `{input}` contains {ch:?}, which is not allowed in a host name")]
    InvalidCharacter {
        /// The input as given.
        input: String,
        /// The offending character.
        ch: char,
    },
    /// The host is not a well-formed DNS name (empty label, label too long, …).
    #[error("the endpoint `{input}` is not a valid host name: {reason}")]
    InvalidHostName {
        /// The input as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The cluster id is not 26 lowercase letters and digits.
    #[error("`{id}` is not a DSQL cluster id: expected {CLUSTER_ID_LEN} lowercase letters and digits")]
    InvalidClusterId {
        /// The id as given.
        id: String,
    },
    /// The host looks like an AWS DSQL endpoint but does not end in
    /// `.dsql.<region>.on.aws`.
    #[error(
        "the endpoint `{input}` does not end in `.dsql.<region>.on.aws`; \
         a DSQL host name is `<cluster-id>.dsql.<region>.on.aws`"
    )]
    WrongSuffix {
        /// The input as given.
        input: String,
    },
    /// A cluster id or custom host name was given without a region.
    #[error(
        "no region for the endpoint `{input}`: a cluster id or a custom host name needs an \
         explicit region (REGION or AWS_REGION, `region=` in a URL, or the full \
         `<cluster-id>.dsql.<region>.on.aws` host name)"
    )]
    MissingRegion {
        /// The input as given.
        input: String,
    },
    /// The region is not a plausible AWS region name.
    #[error("`{region}` is not a valid AWS region name (expected something like `us-east-1`)")]
    InvalidRegion {
        /// The region as given.
        region: String,
    },
    /// The region in the host name and the region given explicitly differ.
    #[error(
        "region conflict: the endpoint host is in `{host_region}` but the region `{explicit}` was \
         given; remove one or make them agree"
    )]
    RegionConflict {
        /// The region read from the host name.
        host_region: String,
        /// The region given explicitly.
        explicit: String,
    },
}
