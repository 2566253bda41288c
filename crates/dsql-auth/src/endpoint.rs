//! DSQL endpoints: host names, cluster ids and regions.

use std::fmt;
use std::str::FromStr;

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
mod tests {
    use super::*;

    const ID: &str = "abcdefghijklmnopqrstuvwxyz";

    #[test]
    fn accepts_good_endpoints() {
        let cases: &[(&str, Option<&str>, &str, &str, bool)] = &[
            (
                "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws",
                None,
                "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws",
                "us-east-1",
                true,
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZ.DSQL.US-EAST-1.ON.AWS.",
                Some("us-east-1"),
                "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws",
                "us-east-1",
                true,
            ),
            (
                "abcdefghijklmnopqrstuvwxyz.dsql-fnh4.us-gov-west-1.on.aws",
                None,
                "abcdefghijklmnopqrstuvwxyz.dsql-fnh4.us-gov-west-1.on.aws",
                "us-gov-west-1",
                true,
            ),
            (
                "0123456789abcdefghijklmnop",
                Some("eu-west-1"),
                "0123456789abcdefghijklmnop.dsql.eu-west-1.on.aws",
                "eu-west-1",
                true,
            ),
            ("localhost", Some("us-east-1"), "localhost", "us-east-1", false),
            (
                "dsql.internal.example.com",
                Some("ap-southeast-2"),
                "dsql.internal.example.com",
                "ap-southeast-2",
                false,
            ),
        ];
        for (input, region, host, want_region, is_cluster) in cases {
            let endpoint =
                Endpoint::parse(input, *region).unwrap_or_else(|e| panic!("{input} should parse: {e}"));
            assert_eq!(endpoint.host(), *host, "{input}");
            assert_eq!(endpoint.region(), *want_region, "{input}");
            assert_eq!(endpoint.cluster_id().is_some(), *is_cluster, "{input}");
        }
    }

    #[test]
    fn rejects_bad_endpoints_with_typed_errors() {
        type Check = fn(&EndpointError) -> bool;
        let cases: &[(&str, Option<&str>, Check, &str)] = &[
            ("", None, |e| matches!(e, EndpointError::Empty), "empty"),
            (".", None, |e| matches!(e, EndpointError::Empty), "empty"),
            (
                "abc def.dsql.us-east-1.on.aws",
                None,
                |e| matches!(e, EndpointError::InvalidCharacter { ch: ' ', .. }),
                "' '",
            ),
            (
                "https://x.dsql.us-east-1.on.aws",
                None,
                |e| matches!(e, EndpointError::InvalidCharacter { ch: ':', .. }),
                "':'",
            ),
            (
                "a..dsql.us-east-1.on.aws",
                None,
                |e| matches!(e, EndpointError::InvalidHostName { .. }),
                "empty label",
            ),
            (
                "-abc.example.com",
                Some("us-east-1"),
                |e| matches!(e, EndpointError::InvalidHostName { .. }),
                "hyphen",
            ),
            (
                "short.dsql.us-east-1.on.aws",
                None,
                |e| matches!(e, EndpointError::InvalidClusterId { .. }),
                "`short` is not a DSQL cluster id",
            ),
            (
                "short",
                Some("us-east-1"),
                |e| matches!(e, EndpointError::InvalidClusterId { .. }),
                "26 lowercase",
            ),
            (
                "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.amazonaws.com",
                None,
                |e| matches!(e, EndpointError::WrongSuffix { .. }),
                ".dsql.<region>.on.aws",
            ),
            (
                "abcdefghijklmnopqrstuvwxyz.dsql.on.aws",
                None,
                |e| matches!(e, EndpointError::WrongSuffix { .. }),
                "does not end in",
            ),
            (
                "abcdefghijklmnopqrstuvwxyz.postgres.us-east-1.on.aws",
                None,
                |e| matches!(e, EndpointError::WrongSuffix { .. }),
                "does not end in",
            ),
            (
                "abcdefghijklmnopqrstuvwxyz",
                None,
                |e| matches!(e, EndpointError::MissingRegion { .. }),
                "needs an explicit region",
            ),
            (
                "localhost",
                None,
                |e| matches!(e, EndpointError::MissingRegion { .. }),
                "`localhost`",
            ),
            (
                "abcdefghijklmnopqrstuvwxyz",
                Some("useast1"),
                |e| matches!(e, EndpointError::InvalidRegion { .. }),
                "`useast1` is not a valid AWS region",
            ),
            (
                "abcdefghijklmnopqrstuvwxyz.dsql.us_east_1.on.aws",
                None,
                |e| matches!(e, EndpointError::InvalidCharacter { ch: '_', .. }),
                "'_'",
            ),
            (
                "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws",
                Some("eu-west-1"),
                |e| matches!(e, EndpointError::RegionConflict { .. }),
                "`us-east-1` but the region `eu-west-1`",
            ),
        ];
        for (input, region, check, needle) in cases {
            let err = Endpoint::parse(input, *region).expect_err(input);
            assert!(check(&err), "{input:?}: unexpected variant {err:?}");
            let message = err.to_string();
            assert!(
                message.contains(needle),
                "{input:?}: message {message:?} does not name {needle:?}"
            );
        }
    }

    #[test]
    fn constructors_validate() {
        assert_eq!(
            Endpoint::cluster(ID, "us-east-2").map(|e| e.host().to_owned()),
            Ok(format!("{ID}.dsql.us-east-2.on.aws"))
        );
        assert!(matches!(
            Endpoint::custom("localhost", "nowhere"),
            Err(EndpointError::InvalidRegion { .. })
        ));
        assert_eq!(
            Endpoint::custom("LocalHost", "us-east-1").map(|e| e.host().to_owned()),
            Ok("localhost".to_owned())
        );
    }
}
