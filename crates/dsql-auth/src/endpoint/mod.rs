//! DSQL endpoints: host names, cluster ids and regions.

mod error;

use std::fmt;
use std::str::FromStr;

pub use self::error::EndpointError;

/// Length of a DSQL cluster id (lowercase letters and digits).
pub const CLUSTER_ID_LEN: usize = 26;

const DSQL_DOMAIN: &str = ".on.aws";

/// Where a DSQL cluster is reached: the host name that is signed into tokens,
/// sent as TLS SNI and checked against the server certificate, plus its region.
///
/// ```
/// use dsql_auth::Endpoint;
///
/// let endpoint: Endpoint = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws".parse()?;
/// assert_eq!(endpoint.region(), "us-east-1");
/// assert_eq!(endpoint.cluster_id(), Some("abcdefghijklmnopqrstuvwxyz"));
///
/// // A bare cluster id needs a region.
/// let endpoint = Endpoint::parse("abcdefghijklmnopqrstuvwxyz", Some("eu-west-1"))?;
/// assert_eq!(endpoint.host(), "abcdefghijklmnopqrstuvwxyz.dsql.eu-west-1.on.aws");
/// # Ok::<(), dsql_auth::EndpointError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    host: String,
    region: String,
    kind: EndpointKind,
}

/// Which form of host name an [`Endpoint`] has.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndpointKind {
    /// An AWS endpoint `<cluster-id>.dsql.<region>.on.aws`.
    Cluster {
        /// The 26-character cluster id.
        id: String,
    },
    /// Any other host name (`localhost`, a private DNS name), used with an
    /// explicit region: `dsql-local`, PrivateLink, tests.
    Custom,
}

impl Endpoint {
    /// Parses a full host name or a bare cluster id.
    ///
    /// The region comes from the host name when it is an AWS DSQL endpoint; a
    /// region given explicitly must then agree with it. A bare cluster id or a
    /// custom host name (`localhost`, a private DNS name) needs `region`.
    /// Host names are case-insensitive and are normalized to lowercase.
    pub fn parse(input: &str, region: Option<&str>) -> Result<Self, EndpointError> {
        let host = normalize_host(input)?;
        let explicit = region.map(validate_region).transpose()?;

        if !host.contains('.') && host != "localhost" {
            let region = explicit.ok_or_else(|| EndpointError::MissingRegion {
                input: input.to_owned(),
            })?;
            return Self::cluster(&host, &region);
        }

        match split_dsql_host(&host) {
            DsqlHost::Aws {
                id,
                region: host_region,
            } => {
                validate_cluster_id(id)?;
                let host_region = validate_region(host_region)?;
                if let Some(explicit) = explicit
                    && explicit != host_region
                {
                    return Err(EndpointError::RegionConflict {
                        host_region,
                        explicit,
                    });
                }
                Ok(Self {
                    kind: EndpointKind::Cluster { id: id.to_owned() },
                    host,
                    region: host_region,
                })
            }
            DsqlHost::Malformed => Err(EndpointError::WrongSuffix {
                input: input.to_owned(),
            }),
            DsqlHost::Other => {
                let region = explicit.ok_or_else(|| EndpointError::MissingRegion {
                    input: input.to_owned(),
                })?;
                Ok(Self {
                    host,
                    region,
                    kind: EndpointKind::Custom,
                })
            }
        }
    }

    /// The endpoint of cluster `id` in `region`.
    pub fn cluster(id: &str, region: &str) -> Result<Self, EndpointError> {
        let id = id.to_ascii_lowercase();
        validate_cluster_id(&id)?;
        let region = validate_region(region)?;
        Ok(Self {
            host: format!("{id}.dsql.{region}.on.aws"),
            kind: EndpointKind::Cluster { id },
            region,
        })
    }

    /// A custom host name with an explicit region, for `dsql-local`,
    /// PrivateLink names and tests. The host is still signed into tokens and
    /// checked against the server certificate.
    pub fn custom(host: &str, region: &str) -> Result<Self, EndpointError> {
        Ok(Self {
            host: normalize_host(host)?,
            region: validate_region(region)?,
            kind: EndpointKind::Custom,
        })
    }

    /// The host name signed into tokens, sent as SNI and verified in the
    /// server certificate.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The AWS region tokens are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The cluster id, for AWS endpoints.
    pub fn cluster_id(&self) -> Option<&str> {
        match &self.kind {
            EndpointKind::Cluster { id } => Some(id),
            EndpointKind::Custom => None,
        }
    }

    /// Which form of host name this is.
    pub fn kind(&self) -> &EndpointKind {
        &self.kind
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("region", &self.region)
            .finish()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    /// Parses a full AWS DSQL host name; see [`Endpoint::parse`] for cluster
    /// ids and custom hosts, which need a region.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s, None)
    }
}

enum DsqlHost<'a> {
    Aws { id: &'a str, region: &'a str },
    Malformed,
    Other,
}

/// Matches `<id>.dsql[^.]*.<region>.on.aws`; anything under `.on.aws` or with
/// a `.dsql` label that does not match is malformed rather than custom, so a
/// typo never silently becomes a "custom" host.
fn split_dsql_host(host: &str) -> DsqlHost<'_> {
    let labels: Vec<&str> = host.split('.').collect();
    let looks_like_dsql =
        host.ends_with(DSQL_DOMAIN) || labels.iter().skip(1).any(|label| label.starts_with("dsql"));
    if !looks_like_dsql {
        return DsqlHost::Other;
    }
    match labels.as_slice() {
        [id, service, region, "on", "aws"] if service.starts_with("dsql") => DsqlHost::Aws { id, region },
        _ => DsqlHost::Malformed,
    }
}

fn normalize_host(input: &str) -> Result<String, EndpointError> {
    let trimmed = input.strip_suffix('.').unwrap_or(input);
    if trimmed.is_empty() {
        return Err(EndpointError::Empty);
    }
    if let Some(ch) = trimmed
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(EndpointError::InvalidCharacter {
            input: input.to_owned(),
            ch,
        });
    }
    let invalid = |reason| EndpointError::InvalidHostName {
        input: input.to_owned(),
        reason,
    };
    if trimmed.len() > 253 {
        return Err(invalid("longer than 253 characters"));
    }
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err(invalid(
                "it has an empty label (two dots in a row, or a leading dot)",
            ));
        }
        if label.len() > 63 {
            return Err(invalid("a label is longer than 63 characters"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label starts or ends with a hyphen"));
        }
    }
    Ok(trimmed.to_ascii_lowercase())
}

fn validate_cluster_id(id: &str) -> Result<(), EndpointError> {
    let valid =
        id.len() == CLUSTER_ID_LEN && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(EndpointError::InvalidClusterId { id: id.to_owned() })
    }
}

/// Accepts the shape of every AWS region name (`us-east-1`, `us-gov-west-1`,
/// `ap-southeast-5`) without a list, so new regions need no release.
pub(crate) fn validate_region(region: &str) -> Result<String, EndpointError> {
    let normalized = region.trim().to_ascii_lowercase();
    let parts: Vec<&str> = normalized.split('-').collect();
    let valid = parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        Ok(normalized)
    } else {
        Err(EndpointError::InvalidRegion {
            region: region.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests;
