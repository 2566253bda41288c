use std::error::Error as StdError;
use std::sync::Arc;
use std::time::SystemTime;

use crate::TokenScope;
use crate::token::DisplayTime;

type Source = Arc<dyn StdError + Send + Sync>;

/// Why a provider could not produce a token.
///
/// Clonable, so that one failed refresh can be reported to every caller that
/// waited for it. Messages never contain a token or a secret key. The
/// underlying error of a variant is kept as its `cause` (for downcasting);
/// its message and causes are already part of this error's message.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// AWS credentials could not be resolved (no credentials configured, or
    /// the credential source failed).
    #[error("could not resolve AWS credentials: {detail}")]
    Credentials {
        /// The source's message with its causes, as one line.
        detail: String,
        /// What the credential source reported.
        cause: Source,
    },
    /// The resolved credentials are expired or about to expire, so no token
    /// can be signed that would outlive them.
    #[error("the AWS credentials expire at {}, too soon to sign a DSQL token", DisplayTime(*.expires_at))]
    CredentialsExpired {
        /// When the credentials expire.
        expires_at: SystemTime,
    },
    /// Signing failed.
    #[error("could not sign a DSQL token: {detail}")]
    Signing {
        /// The signer's message with its causes, as one line.
        detail: String,
        /// What the signer reported.
        cause: Source,
    },
    /// The only token available has expired.
    #[error("the DSQL token expired at {}", DisplayTime(*.expired_at))]
    Expired {
        /// When it expired.
        expired_at: SystemTime,
    },
    /// A custom provider failed.
    #[error("the token provider failed: {detail}")]
    Provider {
        /// The provider's message with its causes, as one line.
        detail: String,
        /// What the provider reported.
        cause: Source,
    },
    /// The provider signs tokens for another (host, user) than the
    /// connection needs: the server would refuse every one of them. A
    /// configuration error, never worth retrying.
    #[error(
        "the token provider signs for {provider} but the connection is for {requested}: \
         give the connection a provider for its own endpoint host and user"
    )]
    WrongScope {
        /// What the provider signs for.
        provider: TokenScope,
        /// What the connection needs.
        requested: TokenScope,
    },
}

impl TokenError {
    /// Wraps the error of a custom provider.
    pub fn provider(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        let source: Source = Arc::from(source.into());
        Self::Provider {
            detail: chain(&*source),
            cause: source,
        }
    }

    #[cfg(feature = "aws")]
    pub(crate) fn credentials(source: impl StdError + Send + Sync + 'static) -> Self {
        Self::Credentials {
            detail: chain(&source),
            cause: Arc::new(source),
        }
    }

    #[cfg(feature = "aws")]
    pub(crate) fn signing(source: Box<dyn StdError + Send + Sync>) -> Self {
        let source: Source = Arc::from(source);
        Self::Signing {
            detail: chain(&*source),
            cause: source,
        }
    }
}

/// `error: cause: cause…` on one line. The AWS SDK's errors keep the useful
/// part (which provider, what was missing) in their causes.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let next_text = next.to_string();
        if !text.ends_with(&next_text) {
            text.push_str(": ");
            text.push_str(&next_text);
        }
        cause = next.source();
    }
    one_line(&text)
}

/// The SDK's "no credentials found in chain" lists each provider on its own
/// line; errors here are one line, for logs and command-line messages.
fn one_line(text: &str) -> String {
    let mut joined = String::with_capacity(text.len());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !joined.is_empty() {
            joined.push_str(if joined.ends_with(':') { " " } else { "; " });
        }
        joined.push_str(line);
    }
    joined
}
