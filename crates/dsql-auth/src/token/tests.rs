//! Claims of the known-answer vector, typed parse errors, date round trips.

use std::time::{Duration, UNIX_EPOCH};

use super::time::{DisplayTime, parse_amz_date};
use super::*;

const VECTOR: &str = "peccy.dsql.us-east-1.on.aws/?Action=DbConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=akid%2F20240827%2Fus-east-1%2Fdsql%2Faws4_request&X-Amz-Date=20240827T000000Z&X-Amz-Expires=450&X-Amz-SignedHeaders=host&X-Amz-Signature=f5f2ad764ca5df44045d4ab6ccecba0eef941b0007e5765885a0b6ed3702a3f8";

#[test]
fn claims_of_the_known_answer_vector() {
    let claims = TokenClaims::parse(VECTOR).expect("vector parses");
    assert_eq!(claims.host, "peccy.dsql.us-east-1.on.aws");
    assert_eq!(claims.action, "DbConnect");
    assert_eq!(claims.access_key_id, "akid");
    assert_eq!(claims.region, "us-east-1");
    assert_eq!(claims.service, "dsql");
    assert_eq!(claims.signed_headers, "host");
    assert_eq!(claims.issued_at, UNIX_EPOCH + Duration::from_secs(1_724_716_800));
    assert_eq!(claims.expires_in, Duration::from_secs(450));
    assert!(!claims.has_session_token);

    let token = AuthToken::from_presigned(VECTOR).expect("vector parses");
    assert_eq!(token.lifetime(), Duration::from_secs(450));
    assert_eq!(format!("{token:?}").matches("2024-08-27T00:07:30Z").count(), 1);
}

#[test]
fn malformed_tokens_are_typed() {
    assert_eq!(TokenClaims::parse("hunter2"), Err(TokenParseError::NotPresigned));
    let no_date = VECTOR.replace("X-Amz-Date=20240827T000000Z&", "");
    assert_eq!(
        TokenClaims::parse(&no_date),
        Err(TokenParseError::MissingParameter("X-Amz-Date"))
    );
    let bad_date = VECTOR.replace("20240827T000000Z", "20241327T000000Z");
    assert_eq!(
        TokenClaims::parse(&bad_date),
        Err(TokenParseError::Malformed("X-Amz-Date"))
    );
    for expires in ["-1", "soon", "18446744073709551615"] {
        let bad_expires = VECTOR.replace("X-Amz-Expires=450", &format!("X-Amz-Expires={expires}"));
        assert_eq!(
            TokenClaims::parse(&bad_expires),
            Err(TokenParseError::Malformed("X-Amz-Expires")),
            "{expires}"
        );
        assert!(AuthToken::from_presigned(bad_expires).is_err(), "{expires}");
    }
}

#[test]
fn dates_round_trip() {
    for (text, secs) in [
        ("19700101T000000Z", 0_u64),
        ("20240827T000000Z", 1_724_716_800),
        ("20000229T235959Z", 951_868_799),
        ("21060207T062816Z", 4_294_967_296),
    ] {
        let at = UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(parse_amz_date(text), Some(at), "{text}");
        let shown = DisplayTime(at).to_string().replace(['-', ':'], "");
        assert_eq!(shown, text, "{text}");
    }
}

/// `expires_at` used to compute `issued_at + MAX_TOKEN_DURATION` eagerly,
/// which panicked for an `issued_at` near the end of `SystemTime`.
#[test]
fn expires_at_never_overflows() {
    let mut claims = TokenClaims::parse(VECTOR).expect("vector parses");
    assert_eq!(
        claims.expires_at(),
        UNIX_EPOCH + Duration::from_secs(1_724_716_800 + 450)
    );

    claims.expires_in = Duration::MAX;
    assert_eq!(claims.expires_at(), claims.issued_at + MAX_TOKEN_DURATION);

    // The latest instant this platform's `SystemTime` can hold, to the second.
    let last = std::iter::successors(Some(i64::MAX as u64), |secs| Some(secs / 2))
        .find_map(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
        .expect("some instant after 1970");
    claims.issued_at = last;
    assert_eq!(claims.expires_at(), last, "expired at once, never a panic");
    claims.expires_in = Duration::ZERO;
    assert_eq!(claims.expires_at(), last);
}
