use crate::clock::{self, SharedClock};
use crate::{AuthToken, TokenError, TokenProvider};

/// Always returns the same token, until it expires; for tests, `dsql-local`
/// and tokens obtained out of band.
///
/// ```
/// use dsql_auth::{AuthToken, StaticProvider, TokenProvider};
///
/// let token = AuthToken::from_presigned(
///     "peccy.dsql.us-east-1.on.aws/?Action=DbConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256\
///      &X-Amz-Credential=akid%2F20240827%2Fus-east-1%2Fdsql%2Faws4_request\
///      &X-Amz-Date=20240827T000000Z&X-Amz-Expires=450&X-Amz-SignedHeaders=host\
///      &X-Amz-Signature=f5f2ad764ca5df44045d4ab6ccecba0eef941b0007e5765885a0b6ed3702a3f8",
/// )?;
/// let provider = StaticProvider::new(token);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // Signed in 2024 for 450 s: long expired, so it is not handed out.
/// assert!(provider.token().await.is_err());
/// # });
/// # Ok::<(), dsql_auth::TokenParseError>(())
/// ```
#[derive(Clone, Debug)]
pub struct StaticProvider {
    token: AuthToken,
    clock: SharedClock,
}

impl StaticProvider {
    /// A provider that returns `token` while it is valid.
    pub fn new(token: AuthToken) -> Self {
        Self {
            token,
            clock: clock::system(),
        }
    }

    /// Uses `clock` to decide whether the token has expired.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
}

impl TokenProvider for StaticProvider {
    async fn token(&self) -> Result<AuthToken, TokenError> {
        if self.token.is_expired(self.clock.now()) {
            return Err(TokenError::Expired {
                expired_at: self.token.expires_at(),
            });
        }
        Ok(self.token.clone())
    }
}
