//! No token, signature, secret key or session token in `Debug` or `Display`.
#![allow(clippy::unwrap_used)]

mod common;

use dsql_auth::{
    CachingProvider, DsqlConfig, SharedTokenProvider, StaticProvider, TokenClaims, TokenError, TokenProvider,
};

use crate::common::{SECRET_KEY, Signer, assert_clean, secrets_of};

#[tokio::test]
async fn nothing_secret_is_ever_formatted() {
    let Signer {
        start,
        clock,
        config,
        signer,
    } = Signer::new("admin");
    let caching = CachingProvider::builder(signer.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let token = caching.token().await.unwrap();
    let secrets = secrets_of(&token);
    let secrets = secrets.each_ref().map(String::as_str);
    let secret = token.expose_secret();

    let static_provider = StaticProvider::new(token.clone());
    let shared = SharedTokenProvider::new(caching.clone());
    let claims = TokenClaims::parse(secret).unwrap();

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
