//! Accepted and rejected endpoints, with the error each rejection names.

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
