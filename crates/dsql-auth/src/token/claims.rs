//! The public parts of a presigned token, read from its query string.

use std::time::{Duration, SystemTime};

use super::MAX_TOKEN_DURATION;
use super::time::parse_amz_date;

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
    ///
    /// [`parse`](Self::parse) guarantees that the sum is representable, but
    /// the fields are public: a sum past what `SystemTime` can hold gives
    /// `X-Amz-Date` plus DSQL's longest validity ([`MAX_TOKEN_DURATION`]),
    /// and if even that cannot be held, `X-Amz-Date` itself (expired at once,
    /// the safe side). Never panics.
    pub fn expires_at(&self) -> SystemTime {
        self.issued_at
            .checked_add(self.expires_in)
            .or_else(|| self.issued_at.checked_add(MAX_TOKEN_DURATION))
            .unwrap_or(self.issued_at)
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

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
