//! Token metrics (feature `metrics`), named in [`semconv`](crate::semconv):
//! counts and outcomes only, never a token, a user or a credential.

use metrics::{Label, counter};

use crate::semconv::{attribute, metric};
use crate::{AuthToken, TokenError};

/// Counts a signing by a `SigningProvider` for `host`.
#[cfg(feature = "aws")]
pub(crate) fn token_signed(host: &str, result: &Result<AuthToken, TokenError>) {
    let labels = outcome(
        vec![Label::new(attribute::SERVER_ADDRESS, host.to_owned())],
        result,
    );
    counter!(metric::DSQL_AUTH_TOKEN_SIGNINGS, labels).increment(1);
}

/// Counts a refresh of a `CachingProvider` (for `host`, when its provider
/// says).
pub(crate) fn token_refreshed(host: Option<&str>, result: &Result<AuthToken, TokenError>) {
    let labels = host
        .map(|host| Label::new(attribute::SERVER_ADDRESS, host.to_owned()))
        .into_iter()
        .collect();
    counter!(metric::DSQL_AUTH_TOKEN_REFRESHES, outcome(labels, result)).increment(1);
}

/// Adds `error.type` to `labels` when `result` failed.
fn outcome(mut labels: Vec<Label>, result: &Result<AuthToken, TokenError>) -> Vec<Label> {
    if let Err(error) = result {
        labels.push(Label::from_static_parts(attribute::ERROR_TYPE, error_type(error)));
    }
    labels
}

/// The kind of a token failure, as `error.type`: a few fixed words (the
/// message could carry a host or a detail, and has unbounded variety).
fn error_type(error: &TokenError) -> &'static str {
    match error {
        TokenError::Credentials { .. } => "credentials",
        TokenError::CredentialsExpired { .. } => "credentials_expired",
        TokenError::Signing { .. } => "signing",
        TokenError::Expired { .. } => "expired",
        TokenError::Provider { .. } => "provider",
        TokenError::WrongScope { .. } => "wrong_scope",
    }
}
