//! No token, signature, secret key or session token in `Debug` or `Display`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use dsql_auth::clock::ManualClock;
use dsql_auth::{
    CachingProvider, DsqlConfig, SharedTokenProvider, SigningProvider, StaticProvider, TokenClaims,
    TokenError, TokenProvider,
};

const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzSESSIONTOKEN";

fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} leaks {secret:?}: {text}");
    }
}

#[tokio::test]
async fn nothing_secret_is_ever_formatted() {
    let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let clock = Arc::new(ManualClock::new(start));
    let config = DsqlConfig::builder()
        .host("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws")
        .build()
        .unwrap();
    let credentials = Credentials::new(
        "AKIDEXAMPLE",
        SECRET_KEY,
        Some(SESSION_TOKEN.into()),
        Some(start + Duration::from_secs(3600)),
        "test",
    );
    let signer = SigningProvider::builder(&config)
        .credentials_provider(credentials)
        .clock(clock.clone())
        .build();
    let caching = CachingProvider::builder(signer.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let token = caching.token().await.unwrap();
    let secret = token.expose_secret().to_owned();
    let signature = secret
        .split('&')
        .find_map(|pair| pair.strip_prefix("X-Amz-Signature="))
        .unwrap()
        .to_owned();
    assert_eq!(signature.len(), 64);
    let secrets = [secret.as_str(), signature.as_str(), SECRET_KEY, SESSION_TOKEN];

    let static_provider = StaticProvider::new(token.clone());
    let shared = SharedTokenProvider::new(caching.clone());
    let claims = TokenClaims::parse(&secret).unwrap();

    let formatted = [
        ("token Debug", format!("{token:?}")),
        ("token Display", format!("{token}")),
        ("token alternate Debug", format!("{token:#?}")),
        ("config Debug", format!("{config:?}")),
        ("signer Debug", format!("{signer:?}")),
        ("caching Debug (with a cached token)", format!("{caching:?}")),
        ("static Debug", format!("{static_provider:?}")),
        ("shared Debug", format!("{shared:?}")),
        ("claims Debug", format!("{claims:?}")),
    ];
    for (what, text) in &formatted {
        assert_clean(what, text, &secrets);
    }

    // Errors carry no secrets either.
    let errors = [
        TokenError::provider(dsql_auth::AuthToken::from_presigned("x/?Action=DbConnect").unwrap_err()),
        TokenError::provider(dsql_auth::Endpoint::parse("bad host", None).unwrap_err()),
        TokenError::Expired { expired_at: start },
        TokenError::CredentialsExpired { expires_at: start },
        TokenError::provider("vault unavailable"),
        DsqlConfig::from_url(&format!("postgres://admin:{SECRET_KEY}@host"))
            .unwrap_err()
            .into_token_error(),
    ];
    for error in &errors {
        assert_clean("error Display", &error.to_string(), &secrets);
        assert_clean("error Debug", &format!("{error:?}"), &secrets);
    }
}

/// Lets config errors share the loop above.
trait IntoTokenError {
    fn into_token_error(self) -> TokenError;
}

impl IntoTokenError for dsql_auth::ConfigError {
    fn into_token_error(self) -> TokenError {
        TokenError::provider(self)
    }
}
