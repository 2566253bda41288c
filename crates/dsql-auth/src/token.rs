//! Authentication tokens: the secret, when it was issued and when it expires.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest validity DSQL accepts for a token (one week).
pub const MAX_TOKEN_DURATION: Duration = Duration::from_secs(604_800);

/// Validity of a token when none is configured, as in every AWS SDK.
pub const DEFAULT_TOKEN_DURATION: Duration = Duration::from_secs(900);

/// The IAM action a token authorizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `dsql:DbConnect`, for every role other than `admin`.
    DbConnect,
    /// `dsql:DbConnectAdmin`, for the `admin` role.
    DbConnectAdmin,
}

impl Action {
    /// The action DSQL requires for `user`: `DbConnectAdmin` for `admin`,
    /// `DbConnect` for everyone else.
    pub fn for_user(user: &str) -> Self {
        if user == "admin" {
            Self::DbConnectAdmin
        } else {
            Self::DbConnect
        }
    }

    /// The action's name as it appears in the token (`Action=…`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DbConnect => "DbConnect",
            Self::DbConnectAdmin => "DbConnectAdmin",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A DSQL authentication token: the PostgreSQL password for one (host, user),
/// valid from `issued_at` until `expires_at`.
///
/// The secret is only reachable through [`AuthToken::expose_secret`]; `Debug`
/// and `Display` print the validity window and never the token. Clones share
/// one allocation.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use dsql_auth::AuthToken;
///
/// let issued = UNIX_EPOCH + Duration::from_secs(1_724_716_800);
/// let token = AuthToken::new("s3cr3t-signature", issued, issued + Duration::from_secs(900));
/// assert!(!format!("{token:?} {token}").contains("s3cr3t"));
/// assert_eq!(token.expose_secret(), "s3cr3t-signature");
/// ```
#[derive(Clone)]
pub struct AuthToken {
    secret: Arc<str>,
    issued_at: SystemTime,
    expires_at: SystemTime,
}

impl AuthToken {
    /// A token from its secret and validity window.
    pub fn new(secret: impl Into<Arc<str>>, issued_at: SystemTime, expires_at: SystemTime) -> Self {
        Self {
            secret: secret.into(),
            issued_at,
            expires_at,
        }
    }

    /// A token from a SigV4-presigned DSQL URL (what the signers produce),
    /// reading its validity from `X-Amz-Date` and `X-Amz-Expires`.
    pub fn from_presigned(secret: impl Into<Arc<str>>) -> Result<Self, TokenParseError> {
        let secret = secret.into();
        let claims = TokenClaims::parse(&secret)?;
        Ok(Self {
            issued_at: claims.issued_at,
            expires_at: claims.expires_at(),
            secret,
        })
    }

    /// The token itself, to send as the PostgreSQL password. Keep it out of
    /// logs.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }

    /// When the token was signed (the signature's `X-Amz-Date`).
    pub fn issued_at(&self) -> SystemTime {
        self.issued_at
    }

    /// The first instant at which the server refuses the token.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// How long the token is valid in total.
    pub fn lifetime(&self) -> Duration {
        self.expires_at.duration_since(self.issued_at).unwrap_or_default()
    }

    /// How long the token stays valid after `now` (zero once expired).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires_at.duration_since(now).unwrap_or_default()
    }

    /// Whether the token is expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        now >= self.expires_at
    }

    /// Whether `other` is the very same token (same secret).
    pub fn same_secret(&self, other: &AuthToken) -> bool {
        Arc::ptr_eq(&self.secret, &other.secret) || self.secret == other.secret
    }
}

impl PartialEq for AuthToken {
    fn eq(&self, other: &Self) -> bool {
        self.same_secret(other) && self.issued_at == other.issued_at && self.expires_at == other.expires_at
    }
}

impl Eq for AuthToken {}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthToken")
            .field("secret", &"<redacted>")
            .field("issued_at", &DisplayTime(self.issued_at))
            .field("expires_at", &DisplayTime(self.expires_at))
            .finish()
    }
}

impl fmt::Display for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<redacted DSQL token valid until {}>",
            DisplayTime(self.expires_at)
        )
    }
}

/// The public parts of a presigned DSQL token: what it was signed for and
/// when. The signature and session token are not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenClaims {
    /// Host name the token was signed for.
    pub host: String,
    /// `Action` query parameter.
    pub action: String,
    /// Access key id from the credential scope.
    pub access_key_id: String,
    /// Date (`YYYYMMDD`) from the credential scope.
    pub scope_date: String,
    /// Region from the credential scope.
    pub region: String,
    /// Service from the credential scope (`dsql`).
    pub service: String,
    /// `X-Amz-Date`.
    pub issued_at: SystemTime,
    /// `X-Amz-Expires`.
    pub expires_in: Duration,
    /// `X-Amz-SignedHeaders`.
    pub signed_headers: String,
    /// Whether `X-Amz-Security-Token` is present (temporary credentials).
    pub has_session_token: bool,
}

impl TokenClaims {
    /// Reads the claims of a presigned token (`<host>/?Action=…&X-Amz-…`).
    pub fn parse(token: &str) -> Result<Self, TokenParseError> {
        let (host, query) = token.split_once("/?").ok_or(TokenParseError::NotPresigned)?;
        if host.is_empty() || host.contains("://") {
            return Err(TokenParseError::NotPresigned);
        }
        let mut action = None;
        let mut credential = None;
        let mut date = None;
        let mut expires = None;
        let mut signed_headers = None;
        let mut has_signature = false;
        let mut has_session_token = false;
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "Action" => action = Some(value),
                "X-Amz-Credential" => credential = Some(value),
                "X-Amz-Date" => date = Some(value),
                "X-Amz-Expires" => expires = Some(value),
                "X-Amz-SignedHeaders" => signed_headers = Some(value),
                "X-Amz-Signature" => has_signature = !value.is_empty(),
                "X-Amz-Security-Token" => has_session_token = !value.is_empty(),
                _ => {}
            }
        }
        let missing = TokenParseError::MissingParameter;
        let action = action.ok_or(missing("Action"))?;
        let credential = credential.ok_or(missing("X-Amz-Credential"))?;
        let date = date.ok_or(missing("X-Amz-Date"))?;
        let expires = expires.ok_or(missing("X-Amz-Expires"))?;
        let signed_headers = signed_headers.ok_or(missing("X-Amz-SignedHeaders"))?;
        if !has_signature {
            return Err(missing("X-Amz-Signature"));
        }

        let credential = percent_decode(credential);
        let mut scope = credential.split('/');
        let (Some(akid), Some(scope_date), Some(region), Some(service), Some("aws4_request"), None) = (
            scope.next(),
            scope.next(),
            scope.next(),
            scope.next(),
            scope.next(),
            scope.next(),
        ) else {
            return Err(TokenParseError::Malformed("X-Amz-Credential"));
        };
        let issued_at = parse_amz_date(date).ok_or(TokenParseError::Malformed("X-Amz-Date"))?;
        let expires_in = expires
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
            // The expiry instant must be representable: untrusted input.
            .filter(|expires_in| issued_at.checked_add(*expires_in).is_some())
            .ok_or(TokenParseError::Malformed("X-Amz-Expires"))?;

        Ok(Self {
            host: host.to_owned(),
            action: action.to_owned(),
            access_key_id: akid.to_owned(),
            scope_date: scope_date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            issued_at,
            expires_in,
            signed_headers: percent_decode(signed_headers),
            has_session_token,
        })
    }

    /// `X-Amz-Date + X-Amz-Expires`: the first instant the token is refused.
    pub fn expires_at(&self) -> SystemTime {
        // `parse` guarantees the sum is representable; saturate regardless.
        self.issued_at
            .checked_add(self.expires_in)
            .unwrap_or(self.issued_at + MAX_TOKEN_DURATION)
    }
}

/// Why a string is not a presigned DSQL token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenParseError {
    /// Not of the form `<host>/?<query>`.
    #[error("not a presigned DSQL token: expected `<host>/?Action=…&X-Amz-…`")]
    NotPresigned,
    /// A required query parameter is absent.
    #[error("the token has no `{0}` parameter")]
    MissingParameter(&'static str),
    /// A query parameter cannot be read.
    #[error("the token's `{0}` parameter is malformed")]
    Malformed(&'static str),
}

/// Parses SigV4's `YYYYMMDD'T'HHMMSS'Z'`.
pub(crate) fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    u64::try_from(secs)
        .ok()
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm), so that no date crate is needed for one format.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats an instant as RFC 3339 UTC (`2024-08-27T00:15:00Z`) for messages.
#[derive(Clone, Copy)]
pub(crate) struct DisplayTime(pub(crate) SystemTime);

impl fmt::Display for DisplayTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(since) = self.0.duration_since(UNIX_EPOCH) else {
            return f.write_str("before 1970");
        };
        let secs = since.as_secs();
        let Ok(days) = i64::try_from(secs / 86_400) else {
            return f.write_str("far future");
        };
        let (year, month, day) = civil_from_days(days);
        let rem = secs % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }
}

impl fmt::Debug for DisplayTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
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
}
