//! Authentication tokens: the secret, when it was issued and when it expires.

mod claims;
mod time;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use self::claims::{TokenClaims, TokenParseError};
pub(crate) use self::time::DisplayTime;

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

#[cfg(test)]
mod tests;
